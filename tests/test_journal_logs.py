"""Logs reach journald with their severity (vrrpd/daemon/logs.py; sd-daemon(3) prefixes)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from vrrpd.daemon.logs import JournalPrefix

CHILD = """
import logging
from vrrpd.daemon.logs import setup_logging
setup_logging()
log = logging.getLogger("vrrpd")
log.info("started")
log.warning("tracker haproxy failed")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("control request failed")
"""


def record(level: int, msg: str) -> logging.LogRecord:
    return logging.LogRecord("vrrpd", level, __file__, 1, msg, None, None)


def test_every_line_carries_the_syslog_priority_of_its_record() -> None:
    fmt = JournalPrefix(logging.Formatter("%(levelname)s %(message)s"))
    assert fmt.format(record(logging.DEBUG, "d")) == "<7>DEBUG d"
    assert fmt.format(record(logging.INFO, "i")) == "<6>INFO i"
    assert fmt.format(record(logging.WARNING, "w")) == "<4>WARNING w"
    assert fmt.format(record(logging.ERROR, "a\nb")) == "<3>ERROR a\n<3>b"
    assert fmt.format(record(logging.CRITICAL, "c")) == "<2>CRITICAL c"


def run_child(journal: bool) -> list[str]:
    """Run setup_logging in a child whose stderr is a pipe, named in JOURNAL_STREAM or not."""
    read, write = os.pipe()
    st = os.fstat(write)
    env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}" if journal else ""}
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stderr=write, env=env)
    os.close(write)
    with os.fdopen(read) as f:
        lines = f.read().splitlines()
    assert proc.wait(timeout=30) == 0
    return lines


def test_into_the_journal_lines_are_prefixed_and_carry_no_time_stamp() -> None:
    lines = run_child(journal=True)
    assert lines[0] == "<6>INFO started"
    assert lines[1] == "<4>WARNING tracker haproxy failed"
    assert lines[2] == "<3>ERROR control request failed"
    assert all(line.startswith("<3>") for line in lines[2:])  # the traceback too
    assert lines[-1] == "<3>ZeroDivisionError: division by zero"


def test_on_a_terminal_or_file_lines_are_plain() -> None:
    lines = run_child(journal=False)
    assert lines[0].endswith(" INFO started") and not lines[0].startswith("<")
