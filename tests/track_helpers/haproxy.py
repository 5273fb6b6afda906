"""What the ``haproxy`` tracker tests share: a HAProxy configuration, a free port, waiting,
and telling a live process from a dead one (a zombie counts as dead, as for the tracker)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from vrrpd.configsync.confirm import MasterCLIConfirm


def haproxy_config(workdir: Path, proxies: str, *, master_worker: bool = False) -> str:
    """A HAProxy configuration with its admin stats socket ``workdir/admin.sock``, short
    timeouts and the test's ``proxies`` sections.  ``master_worker`` puts ``master-worker``
    and the pidfile ``workdir/haproxy.pid`` in ``global``; otherwise the command line says how
    HAProxy runs."""
    mode = f"    master-worker\n    pidfile {workdir}/haproxy.pid\n" if master_worker else ""
    return f"""\
global
{mode}    stats socket {workdir}/admin.sock mode 600 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
{proxies}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def master_ready(cli: MasterCLIConfirm) -> bool:
    """The master answers ``show proc`` on its CLI (``-S``) with a worker.  It serves the CLI
    from the loop where it also handles ``SIGUSR2``: a reload signalled before that is lost
    (at start-up the master forks its worker, then re-executes itself; the pidfile, the stats
    socket and the worker all exist earlier, and the pidfile is empty for a moment after it
    appears)."""
    state = asyncio.run(cli.before())
    return state is not None and bool(state.workers)
