"""Hosts of a test's own, made with Linux network namespaces: `ip netns` + veth + a bridge.

    with network_lab(["a", "b"]) as lab:
        lab.gateway                  # "10.213.N.1": the root namespace, on the bridge
        lab.hosts["a"].address       # "10.213.N.2": a namespace of its own
        subprocess.Popen(lab.hosts["a"].command([...]))   # runs the command inside it

Every host sees only its own loopback and the bridge: what a process inside one reaches goes over
the bridge to an address of the root namespace (where the test runs its forwarders), as it would
across machines. Needs root and iproute2; `netns_unavailable()` says why when it cannot work.
Everything made is removed on exit, also when the test fails; the names carry the test
process's pid, so parallel runs and leftovers of a killed run never collide.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

# 10.213.0.0/16 is this project's test range; the third byte is picked free at runtime.
NETWORK_PREFIX = "10.213"


@dataclass(frozen=True)
class NetnsHost:
    name: str
    namespace: str
    address: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside this host's namespace (`ip netns exec` execs it: same pid)."""
        return ["ip", "netns", "exec", self.namespace, *argv]


@dataclass(frozen=True)
class NetworkLab:
    gateway: str
    hosts: dict[str, NetnsHost]


def netns_unavailable() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    if shutil.which("ip") is None:
        return "iproute2 (the `ip` command) is not installed"
    probe = f"khprobe{os.getpid()}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` fails here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def _free_subnet() -> int:
    """A third byte no address of the root namespace uses yet."""
    used = _ip("-4", "-o", "addr", "show").stdout
    for third in range(1 + os.getpid() % 200, 255):
        if f" {NETWORK_PREFIX}.{third}." not in used:
            return third
    raise RuntimeError(f"no free {NETWORK_PREFIX}.x.0/24 subnet")


@contextmanager
def network_lab(names: Sequence[str]) -> Iterator[NetworkLab]:
    """A bridge in the root namespace and one namespace per name, each on a veth to it."""
    tag = str(os.getpid())
    bridge = f"khbr{tag}"[:15]
    subnet = f"{NETWORK_PREFIX}.{_free_subnet()}"
    with ExitStack() as cleanup:
        _ip("link", "add", bridge, "type", "bridge")
        cleanup.callback(_ip, "link", "del", bridge, check=False)
        _ip("addr", "add", f"{subnet}.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        hosts: dict[str, NetnsHost] = {}
        for index, name in enumerate(names):
            namespace = f"kh{tag}{name}"
            outer, inner = f"khv{tag}{index}"[:15], f"khi{tag}{index}"[:15]
            _ip("netns", "add", namespace)
            # Deleting the namespace also deletes its end of the veth and with it the pair.
            cleanup.callback(_ip, "netns", "del", namespace, check=False)
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            cleanup.callback(_ip, "link", "del", outer, check=False)
            _ip("link", "set", inner, "netns", namespace)
            _ip("link", "set", outer, "master", bridge)
            _ip("link", "set", outer, "up")
            address = f"{subnet}.{index + 2}"
            inside = ("netns", "exec", namespace, "ip")
            _ip(*inside, "addr", "add", f"{address}/24", "dev", inner)
            _ip(*inside, "link", "set", inner, "up")
            _ip(*inside, "link", "set", "lo", "up")
            hosts[name] = NetnsHost(name=name, namespace=namespace, address=address)
        yield NetworkLab(gateway=f"{subnet}.1", hosts=hosts)
