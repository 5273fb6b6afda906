"""Many virtual routers on one interface: CPU, memory, advert spacing, false transitions.

Run as root: ``.venv/bin/python benchmarks/scale.py [--duration 60] [--instances 1,50,255]
[--interval 0.1] [--skip-keepalived]``

For each instance count N, two lab nodes (lb1 priority 150, lb2 priority 100) run N VRRPv3
instances, VRIDs 1..N, on one interface at ``--interval`` (0.1 s), first with vrrpd and then
with keepalived 2.2 (same instances; the script exits 2 when keepalived is not installed,
unless ``--skip-keepalived``).  After both have settled (every VIP on lb1, lb2 backup for
all), for ``--duration`` seconds:

* CPU: the daemon's (and its children's, keepalived forks a VRRP child) user + system CPU
  seconds per second, on each node, from psutil before and after;
* peak RSS: ``VmHWM`` of the daemon's processes, summed;
* advert spacing: an AF_PACKET sniffer on lb2 (:mod:`lab.sniff`) timestamps every advert
  from lb1 in the kernel; gaps are taken per VRID and pooled; p50/p99/max of the gap and of
  ``|gap - interval|``;
* false transitions: state changes on either node during the window (vrrpd: the
  ``transitions`` counters of ``vrrpctl status --json``; keepalived: its "Entering ... STATE"
  log lines).  Nothing happens in the window, so any transition is false.

VIPs.  Real VRIDs on one LAN never share a VIP, and the lab may only use 192.0.2.0/24 and
2001:db8::/64, which hold 191 IPv4 addresses clear of the nodes from .64 to .254.  So VRIDs
1..191 get one IPv4 VIP each, ``192.0.2.(63 + VRID)/32``, and VRIDs 192..255 are IPv6
instances with ``fe80::1:VRID/64`` (RFC 5798 §5.2.9: the first IPv6 VIP is link-local) and
``2001:db8::1:VRID/128``.  Up to 191 instances this is pure IPv4; 255 runs 191 IPv4 and 64
IPv6 instances on the same interface (two raw sockets, one per family).

Targets (issue 16 part 3, 255 instances at 0.1 s, against keepalived in the same run): the
backup's CPU at most 1.5 x keepalived's backup, the master's at most 1.0 x keepalived's master,
peak RSS at most 30 MiB (one instance: 25 MiB), 0 false transitions, ``|gap - interval|``
p99 within 5 ms, every VRID heard.  Prints a table and the verdicts and writes
``benchmarks/results/scale-<UTC time>.json`` (:mod:`benchmarks.record`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import (  # noqa: E402
    SKIP_KEEPALIVED,
    Record,
    byte_compile,
    compared_daemons,
)
from lab.daemons import AddressProbe, Vrrpd, wait_for  # noqa: E402
from lab.haproxy_pair import KeepalivedNode  # noqa: E402
from lab.netns import Node, Topology  # noqa: E402
from lab.sniff import Sniffer, percentile, spacing  # noqa: E402

NODES = {"lb1": ("192.0.2.11/24", "2001:db8::11/64", 150),
         "lb2": ("192.0.2.12/24", "2001:db8::12/64", 100)}
V4_VRIDS = 191  # 192.0.2.64 .. 192.0.2.254
SETTLE = 2.0  # seconds after lb2 went backup everywhere before measuring
TARGET_BACKUP_CPU_RATIO = 1.5  # x keepalived's backup (lb2) in the same run
TARGET_MASTER_CPU_RATIO = 1.0  # x keepalived's master (lb1)
TARGET_PEAK_RSS_MIB = 30.0  # at 255 instances
TARGET_ONE_RSS_MIB = 25.0  # one instance
TARGET_P99_MS = 5.0
FULL = 255  # the instance count the CPU and peak-RSS targets are for


def vips(vrid: int) -> list[str]:
    """The VIPs of VRID ``vrid`` (see the module docstring)."""
    if not 1 <= vrid <= 255:
        raise ValueError(f"VRID {vrid} outside 1..255")
    if vrid <= V4_VRIDS:
        return [f"192.0.2.{63 + vrid}/32"]
    return [f"fe80::1:{vrid:x}/64", f"2001:db8::1:{vrid:x}/128"]


class ProcessTree:
    """CPU time and peak RSS of a process and its descendants."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)

    def _all(self) -> list[psutil.Process]:
        return [self.root, *self.root.children(recursive=True)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self._all():
            with contextlib.suppress(psutil.NoSuchProcess):
                t = proc.cpu_times()
                total += t.user + t.system
        return total

    def peak_rss(self) -> int:
        """Sum of ``VmHWM`` (bytes) over the tree."""
        return self._status_kib("VmHWM") * 1024

    def rss(self) -> int:
        """Sum of ``VmRSS`` (bytes) over the tree, now."""
        return self._status_kib("VmRSS") * 1024

    def _status_kib(self, field: str) -> int:
        total = 0
        for proc in self._all():
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{proc.pid}/status").read_text()
                kib = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
                total += int(kib.group(1)) if kib else 0
        return total


class LabDaemon(Protocol):
    """What the benchmark needs of a VRRP daemon running N instances in one node."""

    def start(self) -> None: ...

    def wait_backup(self, timeout: float) -> None: ...

    def transitions(self) -> int: ...

    def pid(self) -> int: ...

    def stop(self) -> None: ...


class VrrpdDaemon:
    """vrrpd with N instances (:class:`daemons.Vrrpd`)."""

    def __init__(self, node: Node, tmp: Path, priority: int, n: int, interval: float) -> None:
        instances = [{"name": f"vr{v}", "interface": node.ifname, "vrid": v,
                      "priority": priority, "advert_interval": interval, "vips": vips(v)}
                     for v in range(1, n + 1)]
        self.vrrpd = Vrrpd(node, tmp, instances)

    def start(self) -> None:
        self.vrrpd.start()

    def _states(self) -> list[str]:
        return [i["state"] for i in self.vrrpd.ctl("status")["instances"]]

    def wait_backup(self, timeout: float) -> None:
        wait_for(lambda: set(self._states()) == {"BACKUP"}, timeout,
                 f"vrrpd on {self.vrrpd.node.name} to be BACKUP everywhere", poll=0.1)

    def transitions(self) -> int:
        return sum(i["counters"].get("transitions", 0)
                   for i in self.vrrpd.ctl("status")["instances"])

    def pid(self) -> int:
        assert self.vrrpd.proc is not None
        return self.vrrpd.proc.pid

    def stop(self) -> None:
        self.vrrpd.stop()


def keepalived_config(node: Node, priority: int, n: int, interval: float) -> str:
    """keepalived.conf with the same N VRRPv3 instances as :class:`VrrpdDaemon`."""
    blocks = []
    for v in range(1, n + 1):
        addresses = "\n".join(f"        {a} dev {node.ifname}" for a in vips(v))
        blocks.append(f"""vrrp_instance vr{v} {{
    state BACKUP
    interface {node.ifname}
    virtual_router_id {v}
    priority {priority}
    advert_int {interval:g}
    virtual_ipaddress {{
{addresses}
    }}
}}""")
    head = f"global_defs {{\n    router_id {node.name}\n    vrrp_version 3\n}}\n"
    return head + "\n".join(blocks) + "\n"


class KeepalivedDaemon:
    """keepalived 2.2 with N instances (:class:`lab.haproxy_pair.KeepalivedNode`)."""

    STATE_LINE = re.compile(r"\) Entering (\w+) STATE")

    def __init__(self, node: Node, tmp: Path, priority: int, n: int, interval: float) -> None:
        self.n = n
        self.keepalived = KeepalivedNode(node, tmp / node.name / "keepalived",
                                         keepalived_config(node, priority, n, interval))

    def start(self) -> None:
        self.keepalived.start()

    def wait_backup(self, timeout: float) -> None:
        def backups() -> bool:
            return self.keepalived.log().count("Entering BACKUP STATE") >= self.n

        wait_for(backups, timeout, f"keepalived on {self.keepalived.node.name} to be BACKUP",
                 poll=0.1)

    def transitions(self) -> int:
        return len(self.STATE_LINE.findall(self.keepalived.log()))

    def pid(self) -> int:
        assert self.keepalived.proc is not None
        return self.keepalived.proc.pid

    def stop(self) -> None:
        self.keepalived.stop()


DAEMONS: dict[str, type[VrrpdDaemon] | type[KeepalivedDaemon]] = {
    "vrrpd": VrrpdDaemon, "keepalived": KeepalivedDaemon}


@contextlib.contextmanager
def pair(daemon: str, n: int, interval: float, tmp: Path) -> Iterator[
        tuple[Topology, dict[str, LabDaemon], set[str]]]:
    """lb1 master of all N instances, lb2 backup of all, settled; everything gone after.

    Yields the topology, the daemons by node and lb1's advert sources (its IPv4 address and
    the link-local address it had before any fe80 VIP was added).
    """
    with Topology() as lab:
        for name, (ipv4, ipv6, _prio) in NODES.items():
            lab.add_node(name, ipv4, ipv6)
        lb1 = lab.nodes["lb1"]
        sources = {str(lb1.ipv4.ip), lb1.link_local() or ""}
        daemons: dict[str, LabDaemon] = {
            name: DAEMONS[daemon](lab.nodes[name], tmp / daemon, prio, n, interval)
            for name, (_v4, _v6, prio) in NODES.items()}
        probe = AddressProbe(lab.nodes["lb1"])
        wanted = {v for vrid in range(1, n + 1) for v in vips(vrid)}
        try:
            daemons["lb1"].start()
            wait_for(lambda: wanted <= probe.addresses(), 30, f"lb1 to hold all {n} VIPs",
                     poll=0.05)
            daemons["lb2"].start()
            daemons["lb2"].wait_backup(30)
            time.sleep(SETTLE)
            yield lab, daemons, sources
        finally:
            probe.close()
            for d in daemons.values():
                d.stop()


def measure(daemon: str, n: int, interval: float, duration: float, tmp: Path) -> dict[str, Any]:
    """One run: ``daemon`` with ``n`` instances; returns the row for the table and JSON."""
    with pair(daemon, n, interval, tmp) as (lab, daemons, sources):
        load0 = os.getloadavg()[0]
        trees = {name: ProcessTree(d.pid()) for name, d in daemons.items()}
        cpu0 = {name: t.cpu_seconds() for name, t in trees.items()}
        trans0 = {name: d.transitions() for name, d in daemons.items()}
        start = time.monotonic()
        with Sniffer(lab.nodes["lb2"]) as sniff:
            time.sleep(duration)
        elapsed = time.monotonic() - start
        cpu = {name: (t.cpu_seconds() - cpu0[name]) / elapsed for name, t in trees.items()}
        false = {name: d.transitions() - trans0[name] for name, d in daemons.items()}
        rss = {name: t.peak_rss() for name, t in trees.items()}
        gaps = spacing(sniff.frames("vrrp"), sources)
    pooled = [g * 1000 for vrid_gaps in gaps.values() for g in vrid_gaps]
    dev = [abs(g - interval * 1000) for g in pooled]
    row: dict[str, Any] = {
        "daemon": daemon, "instances": n, "interval_s": interval, "duration_s": round(elapsed, 2),
        "cpu_per_s": {k: round(v, 4) for k, v in cpu.items()},
        "peak_rss_mib": {k: round(v / 2**20, 1) for k, v in rss.items()},
        "false_transitions": false,
        "vrids_heard": len(gaps), "adverts": len(pooled) + len(gaps),
        "adverts_expected": round(n * elapsed / interval),
        "loadavg_1min": [round(load0, 2), round(os.getloadavg()[0], 2)],
    }
    if pooled:
        row.update({
            "gap_ms": {"p50": round(percentile(pooled, 0.5), 2),
                       "p99": round(percentile(pooled, 0.99), 2),
                       "max": round(max(pooled), 2), "min": round(min(pooled), 2),
                       "mean": round(statistics.mean(pooled), 2)},
            "deviation_ms": {"p50": round(percentile(dev, 0.5), 2),
                             "p99": round(percentile(dev, 0.99), 2),
                             "max": round(max(dev), 2)}})
    return row


def verdicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each issue 16 part 3 target with vrrpd's figure, the limit and whether it is met."""
    def row(daemon: str, n: int) -> dict[str, Any] | None:
        return next((r for r in rows if (r["daemon"], r["instances"]) == (daemon, n)), None)

    out = []
    full, ka = row("vrrpd", FULL), row("keepalived", FULL)
    if full is not None and ka is not None:
        for node, role, ratio in (("lb2", "backup", TARGET_BACKUP_CPU_RATIO),
                                  ("lb1", "master", TARGET_MASTER_CPU_RATIO)):
            limit = ratio * ka["cpu_per_s"][node]
            out.append({"target": f"{role} CPU at {FULL} <= {ratio:g} x keepalived's",
                        "value": full["cpu_per_s"][node], "limit": round(limit, 4),
                        "met": full["cpu_per_s"][node] <= limit})
    if full is not None:
        peak = max(full["peak_rss_mib"].values())
        out.append({"target": f"peak RSS at {FULL} <= {TARGET_PEAK_RSS_MIB:g} MiB",
                    "value": peak, "limit": TARGET_PEAK_RSS_MIB,
                    "met": peak <= TARGET_PEAK_RSS_MIB})
    one = row("vrrpd", 1)
    if one is not None:
        peak = max(one["peak_rss_mib"].values())
        out.append({"target": f"one instance RSS <= {TARGET_ONE_RSS_MIB:g} MiB", "value": peak,
                    "limit": TARGET_ONE_RSS_MIB, "met": peak <= TARGET_ONE_RSS_MIB})
    for r in rows:
        if r["daemon"] != "vrrpd":
            continue
        false = sum(r["false_transitions"].values())
        out.append({"target": f"{r['instances']} instances: 0 false transitions",
                    "value": false, "limit": 0, "met": false == 0})
        p99 = r.get("deviation_ms", {}).get("p99")
        out.append({"target": f"{r['instances']} instances: |gap - interval| p99 <= "
                              f"{TARGET_P99_MS:g} ms, every VRID heard",
                    "value": p99, "limit": TARGET_P99_MS,
                    "met": p99 is not None and p99 <= TARGET_P99_MS
                    and r["vrids_heard"] == r["instances"]})
    return out


def table(rows: list[dict[str, Any]]) -> str:
    head = ("daemon      N  CPU lb1  CPU lb2  RSS lb1  RSS lb2  adverts/expected  "
            "gap p50   p99    max  |dev| p99  false   load")
    lines = [head, "-" * len(head)]
    for r in rows:
        gap, dev = r.get("gap_ms", {}), r.get("deviation_ms", {})
        lines.append(
            f"{r['daemon']:<10} {r['instances']:>3}  {r['cpu_per_s']['lb1']:>6.1%}  "
            f"{r['cpu_per_s']['lb2']:>6.1%}  {r['peak_rss_mib']['lb1']:>5.1f}M  "
            f"{r['peak_rss_mib']['lb2']:>5.1f}M  {r['adverts']:>7}/{r['adverts_expected']:<8}  "
            f"{gap.get('p50', 0):>6.1f} {gap.get('p99', 0):>6.1f} {gap.get('max', 0):>6.1f}  "
            f"{dev.get('p99', 0):>8.1f}  {sum(r['false_transitions'].values()):>5}  "
            f"{r['loadavg_1min'][0]:>5.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=60.0, help="seconds measured per run")
    p.add_argument("--instances", default="1,50,255", help="comma-separated instance counts")
    p.add_argument("--interval", type=float, default=0.1, help="advert interval, seconds")
    p.add_argument(SKIP_KEEPALIVED, action="store_true", help="measure vrrpd only")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("scale.py: run as root (network namespaces)", file=sys.stderr)
        return 1
    counts = [int(c) for c in args.instances.split(",")]
    daemons = compared_daemons(args.skip_keepalived, "scale.py")
    record = Record("scale", parameters={**vars(args), "byte_code": byte_compile()})
    rows = []
    with tempfile.TemporaryDirectory(prefix="vrrpd-scale-") as tmp:
        for n in counts:
            for daemon in daemons:
                print(f"{daemon}: {n} instances at {args.interval:g} s for "
                      f"{args.duration:g} s ...", flush=True)
                rows.append(measure(daemon, n, args.interval, args.duration,
                                    Path(tmp) / f"{daemon}-{n}"))
    print(table(rows))
    checks = verdicts(rows)
    for v in checks:
        print(f"  {'met   ' if v['met'] else 'MISSED'} {v['target']}: {v['value']} "
              f"(limit {v['limit']})")
    record.write(runs=rows, summary=checks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
