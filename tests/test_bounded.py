"""Bounded queues (issue 12 part 4): notify hooks coalesce, the log queue drops and counts."""

from __future__ import annotations

import asyncio
import logging
import queue
from pathlib import Path

from vrrpd.daemon.logs import BoundedQueueHandler
from vrrpd.daemon.notify import HookRunner


def test_a_flapping_instance_cannot_queue_thousands_of_hook_runs(tmp_path: Path) -> None:
    """10,000 transitions while the first hook runs: one run for the first, one for the
    latest; the 9,998 in between are counted as coalesced, never queued."""
    out = tmp_path / "runs"
    hook = tmp_path / "hook.sh"
    hook.write_text(f'#!/bin/sh\nsleep 0.2\necho "$3 $VRRPD_REASON" >> {out}\n')
    hook.chmod(0o755)

    async def main() -> HookRunner:
        runner = HookRunner(str(hook), {}, "INSTANCE", "web")
        runner.submit("MASTER", "BACKUP", 150, [], "flap 0", "lb1")
        await asyncio.sleep(0.05)  # the first run has started
        for i in range(1, 10_000):
            state = "BACKUP" if i % 2 else "MASTER"
            runner.submit(state, "X", 150, [], f"flap {i}", "lb1")
        async with asyncio.timeout(5):
            await runner.idle()
        await runner.close()
        return runner

    runner = asyncio.run(main())
    assert out.read_text().splitlines() == ["MASTER flap 0", "BACKUP flap 9999"]
    assert runner.coalesced == 9_998


def test_log_queue_is_bounded_and_counts_what_it_drops() -> None:
    """A writer that cannot keep up: the queue holds what fits, the rest is counted, and the
    next record that fits is preceded by a warning with the count."""
    records: queue.Queue[logging.LogRecord] = queue.Queue(3)
    handler = BoundedQueueHandler(records)
    before = BoundedQueueHandler.dropped
    log = logging.getLogger("test.bounded")
    log.propagate = False
    log.addHandler(handler)
    try:
        for i in range(10):
            log.warning("line %d", i)
        assert BoundedQueueHandler.dropped - before == 7
        assert [records.get_nowait().getMessage() for _ in range(3)] == [
            "line 0", "line 1", "line 2"]
        log.warning("after")
        lines = [records.get_nowait().getMessage() for _ in range(2)]
        assert lines == ["7 log lines dropped: the log writer (stderr, journald) could not "
                         "keep up", "after"]
    finally:
        log.removeHandler(handler)
