"""``scripts/lab``: the PACS reference deployment in network namespaces, failed three ways.

``demo`` (default) builds :class:`lab.pacs.PacsLab` (lb1 and lb2 running the shipped
etc/haproxy/haproxy.cfg and etc/vrrpd/lbN.yaml, two PACS backends, a client), starts a client
that sends an HTTP HEAD through the VIP every 10 ms and a DICOM C-ECHO every 200 ms, then
(a) SIGKILLs the master's HAProxy, (b) hands over with ``vrrpctl demote`` while a long HTTP
download and a DICOM C-STORE association run through the VIP (the draining hand-over keeps
both going, :mod:`vrrpd.drain`) and resumes, (c) cuts
the master off the switch and plugs it back, printing one timeline line per event with the
VIP move, the client-visible outage and who answered, draws both nodes' events as an SVG
timeline (:mod:`vrrpd.cli.timeline`, as ``vrrpctl events --plot`` does; ``--timeline PATH``,
default :data:`TIMELINE`) and tears everything down.
``up`` leaves the lab running, ``status`` shows it, ``down`` removes everything the lab made
(also after a crash).  Everything lives in namespaces named ``vrlab-*`` and in
``/run/vrrpd-lab``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.client import ClientProber, Sample, measure
from lab.dicom import DicomProber, find
from lab.haproxy_pair import LBS, VIP_ADDR, wait_for
from lab.netns import Namespace
from lab.pacs import PacsLab
from lab.transfers import DicomStore, HttpDownload
from vrrpd.cli import timeline
from vrrpd.cli.render import render_status
from vrrpd.control.client import ControlError, request

PREFIX = "vrlab"
RUN = Path("/run/vrrpd-lab")
PAUSE = 2.0  # seconds between events, so a human can follow (and the client settles)
TIMELINE = Path("/tmp/vrrpd-lab-timeline.svg")  # outside RUN, which `down` removes


def say(msg: str) -> None:
    now = time.time()
    print(f"{time.strftime('%H:%M:%S', time.localtime(now))}.{int(now % 1 * 10)}  {msg}",
          flush=True)


def lab_namespaces(prefix: str = PREFIX) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(f"{prefix}-")]


def down(quiet: bool = False, prefix: str = PREFIX, run: Path = RUN) -> int:
    """Remove every ``vrlab-*`` namespace (``prefix``), what runs in it, and
    ``/run/vrrpd-lab`` (``run``); safe to run any time.  Returns how many namespaces there
    were."""
    names = lab_namespaces(prefix)
    for name in names:
        Namespace(name).delete()
    shutil.rmtree(run, ignore_errors=True)
    if not quiet:
        say(f"lab removed ({len(names)} namespaces)" if names else "no lab was running")
    return len(names)


def socket_of(node: str) -> Path:
    return RUN / node / "vrrpd.sock"


def up() -> PacsLab:
    """Build the lab (removing any earlier one first); it runs on when this process exits."""
    if leftovers := down(quiet=True):
        say(f"removed an earlier lab ({leftovers} namespaces left running or crashed)")
    say("building the PACS reference deployment: lb1, lb2 (HAProxy etc/haproxy/haproxy.cfg "
        "-L lbN, vrrpd etc/vrrpd/lbN.yaml), pacs1, pacs2, client")
    start = time.monotonic()
    lab = PacsLab(RUN, prefix=PREFIX).__enter__()
    # lb2 is up too: wait until it has learned the master (and pulled HAProxy's stick tables)
    wait_for(lambda: status_of("lb2") is not None, 10, "lb2", poll=0.05)
    say(f"lab up in {time.monotonic() - start:.1f}s: VIP {VIP_ADDR} (VRID 51, VRRPv3 every "
        "0.1 s) on eth1; logs in /run/vrrpd-lab/<node>/")
    return lab


def status_of(node: str) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = request(str(socket_of(node)), "status", {}, timeout=2)
    except (ControlError, OSError):
        return None
    return result


def drain_of(node: str) -> dict[str, Any]:
    """The ``drain`` part of ``node``'s instance status (empty if it cannot be asked)."""
    doc = status_of(node)
    return dict(doc["instances"][0].get("drain") or {}) if doc else {}


def summary() -> str:
    """``lb1 MASTER 150, lb2 BACKUP 100`` from both control sockets."""
    parts = []
    for node in LBS:
        doc = status_of(node)
        if doc is None:
            parts.append(f"{node} down")
            continue
        i = doc["instances"][0]
        admin = "" if i["admin"] == "normal" else f" ({i['admin']})"
        parts.append(f"{node} {i['state']}{admin} {i['effective_priority']}")
    return ", ".join(parts)


def show() -> None:
    if not lab_namespaces():
        print("no lab is running (`scripts/lab up` starts one)")
        return
    for node in LBS:
        doc = status_of(node)
        if doc is None:
            print(f"--- {node}: vrrpd not answering (log: {RUN / node / 'vrrpd.log'})")
            continue
        print(f"--- {node} (vrrpctl --socket {socket_of(node)} status)")
        print(render_status(doc))


def vrrpctl(node: str, *args: str) -> None:
    """Run the operator's ``vrrpctl`` against ``node``."""
    subprocess.run([sys.executable, "-m", "vrrpd.cli.vrrpctl", "--socket", str(socket_of(node)),
                    *args], check=True, capture_output=True, text=True, timeout=30)


class Timeline:
    """The client's view while faults are injected: one line per event."""

    def __init__(self, lab: PacsLab, http: ClientProber, dicom: DicomProber) -> None:
        self.lab, self.http, self.dicom = lab, http, dicom

    def event(self, label: str, action: Callable[[], None], new_master: str | None) -> None:
        """Do ``action``; wait for ``new_master`` (None: whoever) to hold the VIP and both
        probes to answer again; print VIP move, HTTP and DICOM outage."""
        before = self.lab.master()
        fault = time.monotonic()
        doing = threading.Thread(target=action)  # a demote blocks until the peer took over
        doing.start()
        wait_for(lambda: (holder := self.lab.master()) is not None
                         and new_master in (None, holder), 15,
                         f"{new_master or 'an LB'} to hold the VIP")
        moved = time.monotonic() - fault
        doing.join()
        web = self.http.measure(fault, new_lb=new_master)
        wait_for(lambda: any(s.ok and s.sent > fault for s in self.dicom.samples()), 5,
                 "a DICOM C-ECHO to succeed again", poll=0.02)
        time.sleep(self.dicom.timeout)  # echoes still in flight are counted too
        echo = measure(self.dicom.samples(), fault)
        served = self.first_after(fault, new_master)
        now = self.lab.master()
        vip = (f"VIP {before}->{now} {moved * 1000:.0f} ms" if now != before
               else f"VIP stays on {now}")
        say(f"{label:<34} {vip:<22} | web {web.outage_ms:4.0f} ms, {web.failed:2d} failed, "
            f"via {served.lb}->{served.backend} | C-ECHO gap {echo.outage_ms:4.0f} ms, "
            f"{echo.failed} failed")

    def first_after(self, fault: float, lb: str | None) -> Sample:
        return next(s for s in self.http.samples()
                    if s.sent > fault and s.ok and (lb is None or s.lb == lb))

    def note(self, msg: str) -> None:
        say(f"{'':<34} {msg}")


def write_timeline(path: Path, start: float) -> None:
    """Both nodes' events since ``start`` as an SVG timeline."""
    events = []
    for node in LBS:
        answer = request(str(socket_of(node)), "events", {})
        events += answer["events"]
    path.write_text(timeline.render(events, start, time.time(),
                                    "vrrpd lab: (a) HAProxy killed, (b) demote, (c) cable cut"))
    say(f"timeline of both nodes (states, priorities, VIP holder, trackers): {path}")


def demo(keep: bool, timeline_path: Path = TIMELINE) -> None:
    lab = up()
    try:
        m = lab.master()
        assert m is not None
        other = lab.other(m)
        with lab.client(out=RUN / "client.txt") as http:
            dicom = DicomProber(lab.node("client"), VIP_ADDR).start()
            try:
                time.sleep(PAUSE)
                first = next(s for s in http.samples() if s.ok)
                with lab.node("client").ns.entered():
                    found = [find(VIP_ADDR, port) for port in (105, 204)]
                say(f"{summary()}; VIP {VIP_ADDR} on {m}")
                say(f"client 192.0.2.50: HEAD every 10 ms via {first.lb}->{first.backend}, "
                    f"C-ECHO :104 every 200 ms, C-FIND :105 -> {found[0]}, :204 -> {found[1]}")
                table = lab.haproxy[other].stats("show table web").splitlines()[1:2]
                say(f"stick table web on {other} (replicated by `peers pacs`): "
                    + (table[0].split(": ", 1)[-1] if table else "empty"))
                line = Timeline(lab, http, dicom)
                started = time.time() - 1
                scenarios(lab, line, m, other)
                say(summary())
                write_timeline(timeline_path, started)
            finally:
                dicom.stop()
    finally:
        if keep:
            say("lab left running; `scripts/lab status` shows it, `scripts/lab down` removes it")
        else:
            down()


def scenarios(lab: PacsLab, line: Timeline, m: str, other: str) -> None:
    """(a) HAProxy SIGKILL on the master, (b) demote + resume, (c) port cut and back."""
    line.event(f"(a) kill -9 HAProxy on {m}", lambda: lab.haproxy[m].kill(), other)
    lab.restart_haproxy(m)
    line.note(f"HAProxy on {m} restarted: {m} BACKUP, the VIP stays on {other} "
              "(preempt_delay 60 s: stick tables and checks warm up first)")
    time.sleep(PAUSE)
    handover_with_open_transfers(lab, line, m, other)
    vrrpctl(other, "resume")
    line.note(f"vrrpctl resume on {other}: {summary()}")
    time.sleep(PAUSE)
    line.event(f"(c) {m}'s switch port down", lambda: lab.lab.set_link(m, False),  # type: ignore
               other)
    time.sleep(PAUSE)
    line.event(f"    {m}'s switch port up", lambda: lab.lab.set_link(m, True), None)  # type: ignore
    time.sleep(PAUSE)


def handover_with_open_transfers(lab: PacsLab, line: Timeline, m: str, other: str) -> None:
    """(b): ``vrrpctl demote`` on ``other`` while an 8 s HTTP download and a DICOM C-STORE
    association (30 CT images) run through it; both complete on ``other`` (draining) while
    new requests go to ``m`` (forwarding what it does not know)."""
    client = lab.node("client")
    download = HttpDownload(client, VIP_ADDR, 8_000_000, 8).start()
    store = DicomStore(client, VIP_ADDR, 30, 256 * 1024, 8).start()
    time.sleep(1)
    line.event(f"(b) vrrpctl demote on {other}", lambda: vrrpctl(other, "demote"), m)
    old, new = drain_of(other).get("draining"), drain_of(m).get("forwarding")
    if old and new:
        line.note(f"{other} draining: {old['sessions']} sessions, {old['left']:.0f} s left; "
                  f"{m} forwarding unknown flows to {new['to']}")
    results = [download.wait(30), store.wait(30)]
    http, dicom = (r.as_dict() for r in results)
    line.note(f"open across the hand-over: HTTP download {http['percent']:.0f} %"
              f"{' (reset)' if http['reset'] else ''}, DICOM association "
              f"{dicom['done']}/{dicom['total']} images stored"
              f"{'' if dicom['error'] is None else ' (' + dicom['error'] + ')'}")
    ended = max(r.ended or 0.0 for r in results)
    wait_for(lambda: not drain_of(other).get("draining"), 5, f"{other}'s drain to end",
             poll=0.02)
    line.note(f"{other}'s drain ended {time.monotonic() - ended:.2f} s after the last "
              "transfer closed; nothing forwarded any more")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/lab", description=__doc__.split("\n\n")[0])
    p.add_argument("command", nargs="?", default="demo", choices=["demo", "up", "status", "down"])
    p.add_argument("--keep", action="store_true", help="demo: leave the lab running")
    p.add_argument("--timeline", type=Path, default=TIMELINE,
                   help=f"demo: where to write the SVG timeline (default {TIMELINE})")
    p.add_argument("--transparent", action="store_true",
                   help="the transparent variant instead (README \"Transparent mode\"): "
                        "two networks, namespaces vrtp-*")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("scripts/lab: run as root: the lab creates network namespaces", file=sys.stderr)
        return 1
    if args.transparent:
        from lab import tproxy_demo

        return tproxy_demo.main(args.command, args.keep)
    if args.command == "down":
        down()
    elif args.command == "up":
        up()
        show()
        say("`scripts/lab status` shows it again, `scripts/lab down` removes it; "
            f"e.g. ip netns exec {PREFIX}-client curl -sI http://{VIP_ADDR}/")
    elif args.command == "status":
        show()
    else:
        demo(args.keep, args.timeline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
