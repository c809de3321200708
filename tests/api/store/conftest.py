"""A local S3 server for the result-store tests: moto's S3 over HTTPS on 127.0.0.1.

HTTPS because the horde hands out result links only when they are https (clients of the public
horde read anything else as base64): the server's certificate comes from a throw-away CA that
the horde trusts through HORDE_RESULTS_S3_CA_BUNDLE and the worker's upload code through
REQUESTS_CA_BUNDLE. moto's ThreadedMotoServer speaks only plain HTTP, so `MotoS3Server` serves
the same moto application with werkzeug's TLS. moto keeps its buckets in this process, so every
server started here sees the same buckets, and one that is stopped and started again keeps them.
"""

from __future__ import annotations

import ssl
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from pydantic import SecretStr
from werkzeug.serving import BaseWSGIServer, make_server

from tests.helpers.tls import TlsFiles, make_tls_files

REGION = "us-east-1"
# moto accepts any credentials; these only have to be there.
ACCESS_KEY_ID = "AKIAHORDETESTKEY0001"
SECRET_ACCESS_KEY = "horde-test-secret-never-logged-0123456789"


class MotoS3Server:
    """moto's S3 on `host` (127.0.0.1) over TLS, stoppable and restartable on the same port."""

    def __init__(self, tls: TlsFiles, port: int = 0, host: str = "127.0.0.1") -> None:
        self.tls = tls
        self.port = port
        self.host = host
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def start(self) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.tls.cert_file), str(self.tls.key_file))
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self.host,
            self.port,
            app,
            threaded=True,
            request_handler=MotoRequestHandler,
            ssl_context=context,
        )
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None


@pytest.fixture(scope="session")
def s3_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("s3-tls"))


@pytest.fixture(scope="session")
def s3_server(s3_tls: TlsFiles) -> Iterator[MotoS3Server]:
    server = MotoS3Server(s3_tls)
    server.start()
    yield server
    server.stop()


@dataclass
class Bucket:
    """A fresh bucket of the test, the admin's client to look into it, and horde settings."""

    name: str
    client: Any
    settings: dict[str, Any]

    def keys(self) -> set[str]:
        reply = self.client.list_objects_v2(Bucket=self.name)
        return {item["Key"] for item in reply.get("Contents", [])}

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()


def admin_client(endpoint_url: str, ca_file: Path) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        verify=str(ca_file),
    )


def new_bucket(server: MotoS3Server, prefix: str = "horde/") -> Bucket:
    name = f"results-{uuid.uuid4().hex[:12]}"
    client = admin_client(server.endpoint_url, server.tls.ca_file)
    client.create_bucket(Bucket=name)
    settings = {
        "results_s3_bucket": name,
        "results_s3_endpoint_url": server.endpoint_url,
        "results_s3_region": REGION,
        "results_s3_access_key_id": SecretStr(ACCESS_KEY_ID),
        "results_s3_secret_access_key": SecretStr(SECRET_ACCESS_KEY),
        "results_s3_prefix": prefix,
        "results_s3_addressing_style": "path",
        "results_s3_ca_bundle": server.tls.ca_file,
        # One try: a test of an outage should not wait for botocore's backoff.
        "results_s3_max_attempts": 1,
    }
    return Bucket(name=name, client=client, settings=settings)


@pytest.fixture
def s3_trust(s3_tls: TlsFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's upload code (requests) trusts the test CA; no real AWS setting leaks in."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(s3_tls.ca_file))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def bucket(s3_server: MotoS3Server, s3_trust: None) -> Bucket:
    return new_bucket(s3_server)
