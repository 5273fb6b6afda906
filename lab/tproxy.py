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

``scripts/lab --transparent`` (:mod:`lab.tproxy_demo`), ``tests/lab/test_tproxy_lab.py`` and
``benchmarks/tproxy_failover.py`` build it; namespaces are ``vrtp-*`` for the demo and
``vt<hex>-*`` for the others.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from ipaddress import ip_interface
from typing import Any

from lab.daemons import AddressProbe, wait_for
from lab.dicom import associate
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
SPLIT_LIMIT_MS = 100.0  # a split window longer than this is a pair that did not move as one
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

    def seen_after(self, before: list[Seen]) -> list[Seen]:
        """What the PACS servers logged since :meth:`seen` returned ``before``."""
        return list((Counter(self.seen()) - Counter(before)).elements())


@dataclass
class SplitWatch:
    """Samples which LBs hold the client VIP and the gateway VIP, every ``interval`` seconds,
    from a thread, while running (``with`` block).  A *split* is a sample where both VIPs are
    held but by different nodes only (no node holds both): the PACS's replies would reach a
    node without HAProxy's connection.

    The two instances move one after the other (the sync group tells the sibling), so a
    takeover can show one VIP moved a few milliseconds before the other: a split window that
    a connection opened just then rides out with one SYN-ACK retransmission.  What must never
    happen is a split that lasts (:data:`SPLIT_LIMIT_MS`)."""

    lab: TransparentLab
    interval: float = 0.002
    samples: list[tuple[float, tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="split-watch", daemon=True)

    def __enter__(self) -> SplitWatch:
        """Start sampling; return once the first sample (the state before) is taken."""
        self._thread.start()
        wait_for(lambda: bool(self.samples), 5, "the first VIP sample", poll=0.001)
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

    def longest_split_ms(self) -> float:
        """The longest run of split samples, first to the next unsplit sample (0: none)."""
        longest, start = 0.0, None
        for at, client, gateway in self.samples:
            split = bool(client and gateway and not set(client) & set(gateway))
            if split and start is None:
                start = at
            elif not split and start is not None:
                longest, start = max(longest, at - start), None
        if start is not None:  # still split at the last sample
            longest = max(longest, self.samples[-1][0] - start, self.interval)
        return longest * 1000


# ---- failing the pair over, measured (scripts/lab --transparent, benchmarks/tproxy_failover.py)

CLIENT_ADDR = "192.0.2.50"
FAULTS = ("haproxy-kill", "demote", "client-cable", "server-cable")
CABLES = {"client-cable": "eth1", "server-cable": SERVER_IFNAME}  # the cable each pulls


@dataclass
class FailoverResult:
    """One fault of the pair, as the client and the PACS saw it."""

    fault: str
    old_master: str
    new_master: str
    both_vips_moved_ms: float  # fault until the new master holds both VIPs
    split_samples: int  # SplitWatch samples with the VIPs on different nodes
    longest_split_ms: float  # the longest such window
    dicom_gap_ms: float  # longest gap between successful new associations (C-ECHO)
    dicom_failed: int  # associations that failed meanwhile
    first_association_ms: float  # fault until the first new association that succeeded
    http_gap_ms: float  # longest gap between successful web requests
    open_association: str  # what became of an association open at the fault
    pacs_saw: list[str]  # addresses the PACS logged for C-ECHOs sent after the fault


def open_association(lab: TransparentLab, timeout: float = 10) -> Any:
    """A DICOM association to the client VIP from the client, echoed once, left open (tried
    again for up to ``timeout`` seconds: right after a restore the pair may still settle)."""
    opened: list[Any] = []

    def attempt() -> bool:
        with lab.node("client").ns.entered():
            assoc = associate(VIP.split("/")[0], 104, timeout=2.0)
        if assoc.is_established and assoc.send_c_echo().get("Status") == 0:
            opened.append(assoc)
            return True
        if assoc.is_established:
            assoc.abort()
        return False

    wait_for(attempt, timeout, "a DICOM association through the client VIP", poll=0.1)
    return opened[0]


def fate(assoc: Any) -> str:
    """What an association opened before a failover does now: one more C-ECHO on it (2 s
    DIMSE timeout), and how long that took to succeed or fail."""
    start = time.monotonic()
    try:
        status = assoc.send_c_echo() if assoc.is_established else None
    except Exception as exc:  # pynetdicom raises on a torn-down association
        status, error = None, f"{type(exc).__name__}: {exc}"
    else:
        error = "aborted" if assoc.is_aborted else "no answer"
    took = (time.monotonic() - start) * 1000
    if status is not None and status.get("Status") == 0:
        assoc.release()
        return f"survived: C-ECHO answered in {took:.0f} ms"
    if not assoc.is_aborted:
        assoc.abort()
    return f"broken: {error} after {took:.0f} ms"


class Faults:
    """The four faults of issue 17, each with its restore; the master alternates."""

    def __init__(self, lab: TransparentLab) -> None:
        self.lab = lab
        assert lab.lab is not None
        self.topo = lab.lab

    def inject(self, fault: str, master: str) -> None:
        if fault in CABLES:
            self.topo.set_link(master, False, CABLES[fault])
        elif fault == "haproxy-kill":
            self.lab.haproxy[master].kill()
        else:
            self.lab.vrrpd[master].ctl("demote", instance="pacs")

    def restore(self, fault: str, old: str) -> None:
        """Undo ``fault`` on ``old``; return once it is BACKUP in both instances."""
        lab = self.lab
        if fault in CABLES:
            self.topo.set_link(old, True, CABLES[fault])
        elif fault == "haproxy-kill":
            lab.restart_haproxy(old)
        else:
            lab.vrrpd[old].ctl("resume", instance="pacs")
        for instance in ("pacs", "gateway"):
            lab.vrrpd[old].wait_state(instance, "BACKUP", timeout=15)

    def heal(self) -> None:
        """Undo every fault on both nodes, whatever a failed run left (best effort)."""
        for node in ("lb1", "lb2"):
            for ifname in CABLES.values():
                self.topo.set_link(node, True, ifname)
            self.lab.vrrpd[node].ctl("resume", instance="pacs")
            if self.lab.haproxy[node].master_pid() is None:
                self.lab.haproxy[node].start()


# Before each fault: the last takeover's second gratuitous ARP burst (announce.repeat_delay,
# 2 s) has gone out and aged past the neighbour locktime (1 s), within which Linux ignores a
# newer ARP for the same address; otherwise a fault right after a takeover measures that.
QUIET = 3.5


def fail_over(lab: TransparentLab, faults: Faults, fault: str, http: Any, dicom: Any,
              settle: float = 0.3, quiet: float = QUIET) -> FailoverResult:
    """Wait ``quiet`` seconds, inject ``fault`` on the master while the client probes the VIP
    (``http``: a :class:`lab.client.ClientProber`, ``dicom``: a
    :class:`lab.dicom.DicomProber`) and an association is held open; measure; restore the old
    master as BACKUP."""
    from lab.client import measure

    time.sleep(quiet)

    masters: list[str] = []

    def settled() -> bool:
        m = lab.master()
        if m is not None and lab.holders(GATEWAY_VIP) == [m]:
            masters.append(m)
        return bool(masters)

    wait_for(settled, 10, "both VIPs on one master before the fault", poll=0.01)
    old = masters[0]
    new = lab.other(old)
    for instance in ("pacs", "gateway"):  # the peer ready to take over (not in FAULT)
        lab.vrrpd[new].wait_state(instance, "BACKUP", timeout=15)
    assoc = open_association(lab)
    seen_before = lab.seen()
    with SplitWatch(lab) as watch:
        start = time.monotonic()
        faults.inject(fault, old)
        wait_for(lambda: lab.holders(VIP) == [new] and lab.holders(GATEWAY_VIP) == [new], 15,
                 f"{new} to hold both VIPs after {fault} on {old}", poll=0.002)
        moved = time.monotonic() - start
        wait_for(lambda: any(s.ok and s.sent > start for s in dicom.samples()), 10,
                 "a new DICOM association after the fault", poll=0.02)
        time.sleep(max(settle, dicom.timeout))  # echoes in flight are counted too
    open_fate = fate(assoc)
    echoes = dicom.samples()
    dicom_outage = measure(echoes, start)
    first = next(s for s in echoes if s.ok and s.sent > start)
    web = http.measure(start)
    pacs_saw = sorted({s.address for s in lab.seen_after(seen_before)
                       if s.detail.startswith("C-ECHO")})
    faults.restore(fault, old)
    return FailoverResult(fault, old, new, moved * 1000, len(watch.splits()),
                          watch.longest_split_ms(),
                          dicom_outage.outage_ms, dicom_outage.failed,
                          (first.sent + first.latency_ms / 1000 - start) * 1000,
                          web.outage_ms, open_fate, pacs_saw)
