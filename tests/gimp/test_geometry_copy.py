"""`horde gimp-job` sizes areas by the Krita docker's rule: its module is a copy of the
docker's (the docker runs inside Krita's Python and cannot import the client, nor the other way
round), and the copy must never drift."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_clients_geometry_is_the_dockers() -> None:
    docker = (ROOT / "krita_plugin" / "krita_horde" / "geometry.py").read_text()
    client = (ROOT / "horde_client" / "geometry.py").read_text()
    assert client == docker, "copy krita_plugin/krita_horde/geometry.py to horde_client/"
