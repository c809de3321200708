"""A throw-away certificate authority and a server certificate for 127.0.0.1 (trustme)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


def make_tls_files(folder: Path, *extra_hosts: str) -> TlsFiles:
    """A CA no machine trusts but the tests, and a certificate it signed for 127.0.0.1 (and
    `extra_hosts`, e.g. the bridge address of a test's network namespaces)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost", *extra_hosts)
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    ca.cert_pem.write_to_path(str(files.ca_file))
    server.cert_chain_pems[0].write_to_path(str(files.cert_file))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(files.cert_file), append=True)
    server.private_key_pem.write_to_path(str(files.key_file))
    return files
