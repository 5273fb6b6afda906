"""The HAProxy pair with lb1 in the initial network namespace, for keepalived's
``vrrp_track_process`` (see :mod:`lab.rootns` for why and for what lb1 may touch there).

:class:`TrackProcessPair` is :class:`lab.haproxy_pair.HAProxyPair` with lb1 in the root
namespace on its own veth ``vrbench....`` cabled to the lab's switch; lb2, ``backend`` and
``client`` stay in namespaces.  The pair speaks IPv6 in 2001:db8:bec::/64 (no IPv4 in the root
namespace): lb1 ::11, lb2 ::12, backend ::30 (HTTP :8080), client ::50, the VIPs fe80::51/64
(RFC 5798 §5.2.9: first an IPv6 link-local) and ::100/64 (VRRPv3, VRID 51, lb1 150 / lb2 100).
Real HAProxy 2.6 master-worker on both LBs binds the VIP with ``transparent``
(IPV6_TRANSPARENT: it listens before the node holds the VIP, without a host-wide
``ip_nonlocal_bind``).

With ``daemon="keepalived"`` lb1 watches its HAProxy with ``vrrp_track_process``
(:func:`lab.haproxy_pair.keepalived_config`, event-driven) and lb2, in a namespace where that
cannot work, with the 1 s zombie-aware ``vrrp_script``; vrrpd runs its ``haproxy`` tracker
on both, as in the parent class.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from lab.haproxy_pair import BACKEND_PORT, LBS, HAProxy, HAProxyPair, haproxy_config
from lab.rootns import PREFIX, RootLink, address

PREFIXLEN = PREFIX.split("/")[1]
HOSTS = {"lb1": "::11", "lb2": "::12", "backend": "::30", "client": "::50"}
VIP_ADDR = address("::100")


def _v6(host: str) -> str:
    return f"{address(HOSTS[host])}/{PREFIXLEN}"


class RootHAProxy(HAProxy):
    """HAProxy in the root namespace: stopping it kills only the processes started with this
    lab's configuration file, never another HAProxy of the machine."""

    def stop(self) -> None:
        self.kill()
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
                if str(self.cfg).encode() in argv and b"haproxy" in argv[0]:
                    os.kill(int(entry.name), signal.SIGKILL)


class TrackProcessPair(HAProxyPair):
    """See the module docstring; ``root.link`` names the root-namespace link."""

    vips = ["fe80::51/64", f"{VIP_ADDR}/{PREFIXLEN}"]
    url = f"http://[{VIP_ADDR}]/"
    client_node = ("client", "192.0.2.50/24", _v6("client"))
    backend_node = ("backend", "192.0.2.30/24", _v6("backend"))
    backend_bind = address(HOSTS["backend"])

    def __init__(self, workdir: Path, **kwargs: Any) -> None:
        kwargs.setdefault("keepalived_check", "process")
        super().__init__(workdir, **kwargs)
        self.root: RootLink | None = None

    def _add_lbs(self) -> None:
        assert self.lab is not None
        self.root = RootLink(self.lab, "lb1", HOSTS["lb1"])
        self.lab.add_node("lb2", LBS["lb2"][0], _v6("lb2"), ifname=self.ifname)

    def _haproxy(self, node: str) -> HAProxy:
        workdir = self.workdir / node / "haproxy"
        config = haproxy_config(node, workdir, bind=f"ipv6@{VIP_ADDR}:80 transparent",
                                server=f"ipv6@{self.backend_bind}:{BACKEND_PORT}")
        return (RootHAProxy if node == "lb1" else HAProxy)(self.node(node), workdir, config)

    def _keepalived_check(self, node: str) -> str:
        return self.keepalived_check if node == "lb1" else "script"

    def close(self) -> None:
        super().close()
        if self.root is not None:
            self.root.close()
