"""The transparent variant of the PACS deployment in namespaces (README "Transparent mode").

Two networks (two bridges of one :class:`~lab.netns.Topology`)::

    client 192.0.2.50 --+-- br0 (clients)            client VIP  192.0.2.100   VRID 51 eth1
    lb1 eth1 192.0.2.11 -+                           gateway VIP 198.51.100.1  VRID 52 eth2
    lb2 eth1 192.0.2.12 -+                           (one sync group, on the master)
    lb1 eth2 198.51.100.11 -+-- br1 (PACS servers)
    lb2 eth2 198.51.100.12 -+
    pacs1 198.51.100.30 ----+   default via 198.51.100.1, scripts/pacs-backend --log-clients
    pacs2 198.51.100.31 ----+

* HAProxy runs the reference etc/haproxy/haproxy.cfg with ``PACS_TRANSPARENT=1 PACS1=...
  PACS2=...`` in its environment (as /etc/default/haproxy would set them): every backend
  connects with ``source 0.0.0.0 usesrc clientip``.
* vrrpd runs etc/vrrpd/lb1-tproxy.yaml / lb2-tproxy.yaml (the lab's paths and keys, as
  :class:`lab.pacs.PacsLab` does): instances ``pacs`` and ``gateway`` (``tproxy: {}``) in sync
  group ``transparent``.
* The LBs route between the networks (``ip_forward=1``, as a gateway must, for the PACS's own
  connections) with strict reverse-path filtering (``rp_filter=1``): TPROXY needs neither
  loosened.
* The PACS servers log the address each HTTP request and C-ECHO/C-FIND came from
  (:meth:`TransparentLab.seen`), and answer it back (``X-Remote-Addr``, C-FIND
  InstitutionAddress).

``scripts/lab --transparent`` (:mod:`lab.demo`) and ``tests/lab/test_tproxy_lab.py`` build it;
namespaces are ``vrtp-*`` for the demo and ``vt<hex>-*`` for tests.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from ipaddress import ip_interface

from lab.daemons import AddressProbe, wait_for
from lab.haproxy_pair import VIP
from lab.pacs import PacsLab

GATEWAY_VIP = "198.51.100.1/24"
GATEWAY = GATEWAY_VIP.split("/")[0]
SERVER_BRIDGE = "br1"
SERVER_IFNAME = "eth2"
SERVER_SIDE = {"lb1": ("198.51.100.11/24", "2001:db8:5::11/64"),
               "lb2": ("198.51.100.12/24", "2001:db8:5::12/64")}
PACS_SERVERS = {"pacs1": ("198.51.100.30/24", "2001:db8:5::30/64"),
                "pacs2": ("198.51.100.31/24", "2001:db8:5::31/64")}
HAPROXY_ENV = {"PACS_TRANSPARENT": "1",
               **{name.upper(): v4.split("/")[0] for name, (v4, _v6) in PACS_SERVERS.items()}}
LB_SYSCTLS = {"net.ipv4.ip_forward": 1, "net.ipv4.conf.all.rp_filter": 1,
              "net.ipv4.conf.default.rp_filter": 1}
_SEEN = re.compile(r"^seen (\S+) (\S+) (.*)$")


@dataclass(frozen=True)
class Seen:
    """One ``--log-clients`` line of a PACS server: what came from which address."""

    server: str
    service: str  # http, dicom:104, ...
    address: str
    detail: str  # GET /, C-ECHO LABCLIENT, ...


class TransparentLab(PacsLab):
    """The transparent PACS pair (module docs); a context manager like its base class."""

    pacs_servers = PACS_SERVERS
    pacs_bridge = SERVER_BRIDGE
    pacs_gateway = GATEWAY
    pacs_args = ("--log-clients",)
    haproxy_env = HAPROXY_ENV
    vrrpd_file = "{node}-tproxy.yaml"
    interfaces = ("eth1", SERVER_IFNAME)

    def _add_lbs(self) -> None:
        """lb1 and lb2 with a second cable, on the PACS servers' network."""
        assert self.lab is not None
        self.lab.add_bridge(SERVER_BRIDGE)
        super()._add_lbs()
        for name in ("lb1", "lb2"):
            self.lab.cable(name, SERVER_IFNAME, SERVER_BRIDGE, *SERVER_SIDE[name])
            ns = self.node(name).ns
            for key, value in LB_SYSCTLS.items():
                ns.sysctl(key, value)
            for ifname in ("eth1", SERVER_IFNAME):  # these existed before `default` was set
                ns.sysctl(f"net.ipv4.conf.{ifname}.rp_filter", 1)

    def _start_vrrpd(self) -> None:
        super()._start_vrrpd()
        self.vrrpd["lb2"].wait_state("gateway", "BACKUP")
        wait_for(lambda: self.holders(GATEWAY_VIP) == ["lb1"], 10,
                 "lb1 to hold the gateway VIP", poll=0.01)

    def seen(self) -> list[Seen]:
        """Every ``seen`` line both PACS servers logged so far, pacs1's first."""
        out = []
        for name in self.pacs_servers:
            log = self.pacs_log(name)
            for line in log.read_text(errors="replace").splitlines() if log.exists() else ():
                if m := _SEEN.match(line):
                    out.append(Seen(name, *m.groups()))
        return out


@dataclass
class SplitWatch:
    """Samples which LBs hold the client VIP and the gateway VIP, every ``interval`` seconds,
    from a thread, while running (``with`` block).  A *split* is a sample where both VIPs are
    held but by different nodes only (no node holds both): the PACS's replies would reach a
    node without HAProxy's connection."""

    lab: TransparentLab
    interval: float = 0.002
    samples: list[tuple[float, tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="split-watch", daemon=True)

    def __enter__(self) -> SplitWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        """One dump of each node's addresses per sample, on netlink sockets of this thread's
        own (the lab's probes belong to the caller's thread)."""
        probes = {name: AddressProbe(self.lab.node(name)) for name in self.lab.probe}
        vip, gateway = (str(ip_interface(v)) for v in (VIP, GATEWAY_VIP))
        try:
            while not self._stop.is_set():
                held = {name: p.addresses() for name, p in probes.items()}
                self.samples.append((time.monotonic(),
                                     tuple(n for n, a in held.items() if vip in a),
                                     tuple(n for n, a in held.items() if gateway in a)))
                self._stop.wait(self.interval)
        finally:
            for probe in probes.values():
                probe.close()

    def splits(self) -> list[tuple[float, tuple[str, ...], tuple[str, ...]]]:
        """The samples where the two VIPs were split (see the class docs)."""
        return [s for s in self.samples if s[1] and s[2] and not set(s[1]) & set(s[2])]

    def moved(self) -> bool:
        """Both VIPs were on one node at the first sample and on the other at the last."""
        first, last = self.samples[0], self.samples[-1]
        return (len(first[1]) == 1 and first[1] == first[2] and last[1] == last[2]
                and len(last[1]) == 1 and first[1] != last[1])
