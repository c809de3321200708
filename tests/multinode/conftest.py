"""Two horde API nodes on two hosts of the test's own (network namespaces), sharing the real
Redis, the real PostgreSQL and an S3 bucket (moto), as N nodes behind a proxy share them.

Each node is the real `horde-api serve` (uvicorn, production mode) inside its own namespace,
listening on its own address of a bridge; it reaches nothing of the machine but the bridge.
The shared services live in the root namespace: Redis and PostgreSQL listen on 127.0.0.1 only,
so the test forwards the bridge address to them (tests/faults/proxy.py in pass-through mode;
Redis once per node, so that one node alone can lose it), and moto's S3 listens on the bridge
address itself. Clients and workers run in the test process
and reach each node over the bridge.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from tests.api.store.conftest import Bucket, MotoS3Server, new_bucket
from tests.conftest import require
from tests.faults.conftest import FAST_ENV
from tests.faults.proxy import FaultProxy
from tests.helpers.live_horde import LiveHorde, new_horde
from tests.helpers.netns import netns_unavailable, network_lab
from tests.helpers.postgres import fresh_schema
from tests.helpers.tls import TlsFiles, make_tls_files

# Every node's and CLI's Redis/PostgreSQL connections go through one forwarder each.
FORWARDER_CONNECTIONS = 256


@dataclass
class Cluster:
    a: LiveHorde
    b: LiveHorde
    bucket: Bucket
    tls: TlsFiles
    artist_key: str
    volunteer_key: str
    # The nodes' only ways to Redis (one link per node, by node name) and PostgreSQL (one for
    # both): `drop()` a link to cut nodes off the store behind it.
    redis_links: dict[str, FaultProxy]
    postgres: FaultProxy
    redis_prefix: str

    def links(self, service: str) -> list[FaultProxy]:
        return list(self.redis_links.values()) if service == "redis" else [self.postgres]


def via(url: str, host: str, port: int) -> str:
    """`url` with its host and port replaced (credentials, database and query kept)."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return parts._replace(netloc=netloc).geturl()


def s3_env(bucket: Bucket) -> dict[str, str]:
    """The bucket's horde settings as the `HORDE_*` variables a node process reads."""
    env = {}
    for name, value in bucket.settings.items():
        plain = value.get_secret_value() if isinstance(value, SecretStr) else value
        env[f"HORDE_{name.upper()}"] = str(plain)
    return env


def _forwarder(stack: ExitStack, host: str, url: str) -> FaultProxy:
    target = make_url(url)
    proxy = FaultProxy(
        target.port or 0,
        target_host=target.host or "127.0.0.1",
        listen_host=host,
        max_connections=FORWARDER_CONNECTIONS,
    )
    stack.enter_context(proxy)
    return proxy


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, postgres_url: str
) -> Iterator[Cluster]:
    why_not = netns_unavailable()
    require(why_not is None, f"two API nodes need network namespaces: {why_not}")
    tmp_path = tmp_path_factory.mktemp("two-nodes")
    with ExitStack() as stack:
        lab = stack.enter_context(network_lab(["a", "b"]))
        redis_links = {name: _forwarder(stack, lab.gateway, redis_url) for name in lab.hosts}
        postgres_proxy = _forwarder(stack, lab.gateway, postgres_url)
        schema_url = stack.enter_context(fresh_schema(postgres_url))
        tls = make_tls_files(tmp_path / "tls", lab.gateway)
        s3 = MotoS3Server(tls, host=lab.gateway)
        s3.start()
        stack.callback(s3.stop)
        bucket = new_bucket(s3)
        redis_prefix = f"test-{uuid.uuid4().hex[:12]}:"
        database_url = via(schema_url, lab.gateway, postgres_proxy.port)
        # One uvicorn process per node: the nodes are the point, and the machine is small.
        env = {**FAST_ENV, **s3_env(bucket), "HORDE_PROCESSES": "1"}
        a, b = (
            new_horde(
                tmp_path / host.name,  # its own data dir: nothing shared on disk
                redis_url=via(redis_url, lab.gateway, redis_links[host.name].port),
                redis_prefix=redis_prefix,
                database_url=database_url,
                extra_env=env,
                host=host.address,
                launcher=host.command([]),
            )
            for host in lab.hosts.values()
        )
        # Stopped before the services and namespaces go (the stack unwinds in reverse).
        stack.callback(a.stop)
        stack.callback(b.stop)
        # Both at once, as a fleet starts: their migrations take turns on PostgreSQL's lock.
        with ThreadPoolExecutor(2) as pool:
            for started in [pool.submit(a.start), pool.submit(b.start)]:
                started.result()
            artist, volunteer = pool.map(
                lambda args: args[0].create_user(args[1]), [(a, "artist"), (b, "volunteer")]
            )
        yield Cluster(
            a=a,
            b=b,
            bucket=bucket,
            tls=tls,
            artist_key=artist,
            volunteer_key=volunteer,
            redis_links=redis_links,
            postgres=postgres_proxy,
            redis_prefix=redis_prefix,
        )
