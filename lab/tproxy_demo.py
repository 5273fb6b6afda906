"""``scripts/lab --transparent``: the transparent PACS variant (:mod:`lab.tproxy`), failed four
ways, showing what the PACS saw.

``demo`` (default) builds :class:`lab.tproxy.TransparentLab` in namespaces ``vrtp-*`` (files
under ``/run/vrrpd-tproxy-lab``): lb1 and lb2 with the reference haproxy.cfg in its transparent
form and etc/vrrpd/lbN-tproxy.yaml, pacs1 and pacs2 on their own network behind the gateway
VIP, a client on the clients' network.  It shows what vrrpd installed on the master and the
client address the PACS logged for a web GET, a C-ECHO and a C-FIND; then, while the client
sends a GET every 10 ms and opens a new DICOM association every 50 ms, it (a) SIGKILLs the
master's HAProxy, (b) ``vrrpctl demote``s the client-side instance, (c) pulls the master's
client-side cable, (d) pulls the master's server-side cable -- restoring the old master as
BACKUP after each -- and prints one line per fault (:func:`lab.tproxy.fail_over`).  ``up``
leaves the lab running, ``status`` shows it, ``down`` removes it (also after a crash).
"""

from __future__ import annotations

from pathlib import Path

from lab import demo
from lab.client import http_request
from lab.demo import say
from lab.dicom import DicomProber, echo, find
from lab.haproxy_pair import LBS, VIP_ADDR
from lab.tproxy import CLIENT_ADDR, FAULTS, GATEWAY, Faults, TransparentLab, fail_over
from vrrpd.cli.render import render_status
from vrrpd.control.client import ControlError, request

PREFIX = "vrtp"
RUN = Path("/run/vrrpd-tproxy-lab")


def down(quiet: bool = False) -> int:
    return demo.down(quiet, PREFIX, RUN)


def up() -> TransparentLab:
    """Build the lab (removing any earlier one first); it runs on when this process exits."""
    if leftovers := down(quiet=True):
        say(f"removed an earlier transparent lab ({leftovers} namespaces)")
    say("building the transparent PACS pair: lb1, lb2 (haproxy.cfg with PACS_TRANSPARENT=1, "
        "vrrpd etc/vrrpd/lbN-tproxy.yaml), pacs1, pacs2 on 198.51.100.0/24, client")
    lab = TransparentLab(RUN, prefix=PREFIX).__enter__()
    say(f"lab up: client VIP {VIP_ADDR} (VRID 51, eth1) and gateway VIP {GATEWAY} (VRID 52, "
        f"eth2) on lb1, sync group `transparent`; logs in {RUN}/<node>/")
    return lab


def show() -> None:
    if not demo.lab_namespaces(PREFIX):
        print("no transparent lab is running (`scripts/lab --transparent up` starts one)")
        return
    for node in LBS:
        try:
            doc = request(str(RUN / node / "vrrpd.sock"), "status", {}, timeout=2)
        except (ControlError, OSError):
            print(f"--- {node}: vrrpd not answering (log: {RUN / node / 'vrrpd.log'})")
            continue
        print(f"--- {node}")
        print(render_status(doc))


def installed(lab: TransparentLab, node: str) -> str:
    """What vrrpd holds for transparent proxying on ``node``, as ``ip``/``nft`` show it."""
    ns = lab.node(node).ns
    rule = [ln.strip() for ln in ns.run("ip rule").stdout.splitlines() if "0x7470" in ln]
    route = ns.run("ip route show table 7470", check=False).stdout.strip()
    mark = [ln.strip() for ln in ns.run("nft list table inet vrrpd_tproxy", check=False)
            .stdout.splitlines() if "socket transparent" in ln]
    return (f"ip rule: {'; '.join(rule) or '-'} | table 7470: {route or '-'} | nft "
            f"inet vrrpd_tproxy: {'; '.join(mark) or '-'}")


def requests_seen(lab: TransparentLab) -> str:
    """A GET, a C-ECHO and a C-FIND through the client VIP; what the PACS logged for them."""
    before = lab.seen()
    http_request(lab.node("client"), VIP_ADDR, "GET")
    with lab.node("client").ns.entered():
        echo(VIP_ADDR, 104, 2)
        find(VIP_ADDR, 105, 2)
    return "; ".join(f"{s.server} {s.service} {s.detail.split()[0]} from {s.address}"
                     for s in lab.seen_after(before) if s.detail.split()[0] != "HEAD")


def run_demo(keep: bool) -> None:
    lab = up()
    try:
        say(f"on lb1 (master): {installed(lab, 'lb1')}")
        say(f"on lb2 (backup): {installed(lab, 'lb2')}")
        say(f"client {CLIENT_ADDR} -> VIP: the PACS logged {requests_seen(lab)}")
        faults = Faults(lab)
        with lab.client(interval=0.01, timeout=0.05) as http_probe:
            dicom = DicomProber(lab.node("client"), VIP_ADDR, interval=0.05,
                                timeout=0.5).start()
            try:
                for label, fault in zip("abcd", FAULTS, strict=True):
                    r = fail_over(lab, faults, fault, http_probe, dicom)
                    say(f"({label}) {fault:<12} {r.old_master}->{r.new_master}: both VIPs "
                        f"{r.both_vips_moved_ms:.0f} ms ({r.split_samples} split samples) | "
                        f"new association after {r.first_association_ms:.0f} ms, web gap "
                        f"{r.http_gap_ms:.0f} ms | association open at the fault: "
                        f"{r.open_association} | PACS saw {', '.join(r.pacs_saw)}")
            finally:
                dicom.stop()
        say(f"after the faults, the PACS logged {requests_seen(lab)}")
    finally:
        if keep:
            say("lab left running; `scripts/lab --transparent status` shows it, "
                "`scripts/lab --transparent down` removes it")
        else:
            down()


def main(command: str, keep: bool) -> int:
    if command == "down":
        down()
    elif command == "up":
        up()
        show()
    elif command == "status":
        show()
    else:
        run_demo(keep)
    return 0
