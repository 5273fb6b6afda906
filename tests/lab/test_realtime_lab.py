"""``realtime_priority:`` for real (vrrpd/daemon/scheduling.py): the daemon's event-loop
thread runs SCHED_RR at the configured priority, under RLIMIT_RTTIME; every other thread of
the daemon, and the programs it starts (a script tracker here), are normally scheduled."""

from __future__ import annotations

import os
from pathlib import Path

from lab.daemons import Vrrpd, wait_for
from lab.netns import Topology
from lab.takeover import VIP4, instance
from vrrpd.daemon.scheduling import RTTIME_LIMIT_US

PRIORITY = 10


def scheduling(pid: int, tid: int) -> tuple[int, int]:
    """(policy, real-time priority) of thread ``tid`` of ``pid``: fields 41 and 40 of
    /proc/PID/task/TID/stat (proc(5))."""
    stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # fields from 3 on: the name may hold spaces
    return int(fields[41 - 3]), int(fields[40 - 3])


def test_the_event_loop_alone_runs_sched_rr(two_nodes: Topology, tmp_path: Path) -> None:
    seen = tmp_path / "script-policy"
    script = f"chrt -p $$ > {seen}"
    vrrpd = Vrrpd(two_nodes.nodes["lb1"], tmp_path,
                  [instance("web", 51, 150, 0.1, [VIP4], track=["probe"])],
                  realtime_priority=PRIORITY,
                  tracks={"probe": {"type": "script", "command": script, "interval": 0.2,
                                    "user": "root"}})
    vrrpd.start()
    try:
        vrrpd.wait_state("web", "MASTER")
        assert vrrpd.proc is not None
        pid = vrrpd.proc.pid
        assert f"event loop scheduled SCHED_RR priority {PRIORITY}" in vrrpd.log()
        assert scheduling(pid, pid) == (os.SCHED_RR, PRIORITY)
        others = {tid: scheduling(pid, int(tid)) for tid in os.listdir(f"/proc/{pid}/task")
                  if int(tid) != pid}
        assert others, "vrrpd runs other threads (the log writer at least)"
        assert set(others.values()) == {(os.SCHED_OTHER, 0)}, others
        limits = Path(f"/proc/{pid}/limits").read_text()
        assert any(line.startswith("Max realtime timeout") and
                   line.split()[3:5] == [str(RTTIME_LIMIT_US)] * 2
                   for line in limits.splitlines()), limits
        wait_for(lambda: seen.exists() and "policy" in seen.read_text(), 5,
                 "the script tracker to run", poll=0.05)
        assert "SCHED_OTHER" in seen.read_text(), seen.read_text()
    finally:
        vrrpd.stop()
