"""Shared fixtures: the real services the slow test layers need.

Outside CI a layer whose real component is missing is SKIPPED with the reason. Under CI=true the
same absence is a FAILURE: .ci/run starts or installs every component first, so a missing one
means the run proves nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.postgres import fresh_schema

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DIR = ROOT / "krita_plugin"
if str(PLUGIN_DIR) not in sys.path:
    # The plug-in is not an installed distribution (Krita loads it from pykrita/): import it
    # the way Krita does, from its folder.
    sys.path.insert(0, str(PLUGIN_DIR))

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")


def require(available: bool, reason: str) -> None:
    """Skip (or, under CI, fail) the calling test when a real component is missing."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {reason}: .ci/run should have provided it", pytrace=False)
    pytest.skip(reason)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the real Redis on 127.0.0.1:6379 (a database number of its own is not needed:
    every test uses a fresh key prefix)."""
    require(port_open("127.0.0.1", 6379), "Redis is not running on 127.0.0.1:6379")
    return REDIS_URL


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix no other test uses, so tests on the shared Redis never see each other."""
    return f"test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    require(port_open("127.0.0.1", 5432), "PostgreSQL is not running on 127.0.0.1:5432")
    return POSTGRES_URL


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    with fresh_schema(postgres_url) as url:
        yield url


@pytest.fixture(scope="session")
def krita_binary() -> str:
    """Path of the real Krita and xvfb-run; the real-Krita layer needs both."""
    krita = shutil.which("krita")
    xvfb = shutil.which("xvfb-run")
    require(bool(krita and xvfb), "Krita and xvfb-run are not installed")
    assert krita is not None
    return krita


@pytest.fixture(scope="session")
def gimp_console() -> str:
    """Path of Debian's GIMP 2.10 console binary; the GIMP layer also needs gimptool-2.0 (the
    libgimp2.0-dev package) to build the plug-in."""
    gimp = shutil.which("gimp-console-2.10")
    gimptool = shutil.which("gimptool-2.0")
    require(
        bool(gimp and gimptool), "GIMP 2.10 (gimp-console-2.10) and gimptool-2.0 are not installed"
    )
    assert gimp is not None
    return gimp
