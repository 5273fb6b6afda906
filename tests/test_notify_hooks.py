"""keepalived's notify habits (issue 15 part 2): notify_master / _backup / _fault / _stop beside
notify, in keepalived's order and with its arguments, and STOP (not INIT) when vrrpd stops.

Two daemons on an in-memory link (kernel fakes, as tests/test_daemon.py), real hook processes
appending their argv to a file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from daemon_helpers import Node, until, write_config

from vrrpd.config.errors import ConfigError
from vrrpd.config.loader import parse_config
from vrrpd.kernel.fakes import FakeLink
from vrrpd.proto.events import State


def recorder(tmp_path: Path, name: str, out: Path) -> Path:
    """A hook that appends ``NAME $@`` to ``out``."""
    hook = tmp_path / name
    hook.write_text(f'#!/bin/sh\necho "{name} $*" >> {out}\n')
    hook.chmod(0o755)
    return hook


def test_per_state_hooks_then_notify_and_stop(tmp_path: Path) -> None:
    """Becoming MASTER runs notify_master (its own arguments only), then notify with keepalived's
    four; stopping runs notify_stop, then notify with STOP."""
    out = tmp_path / "calls"
    hooks = {f"notify_{s}": f"{recorder(tmp_path, s, out)} arg1 'two words'"
             for s in ("master", "backup", "fault", "stop")}

    async def main() -> None:
        link = FakeLink()
        lb1 = Node(link, tmp_path, "lb1", "192.0.2.11", 150,
                   notify=str(recorder(tmp_path, "notify", out)) + " pre", **hooks)
        lb2 = Node(link, tmp_path, "lb2", "192.0.2.12", 100)
        try:
            await lb1.start()
            await lb2.start()
            await until(lambda: lb1.state() is State.MASTER and lb2.state() is State.BACKUP)
            await until(lambda: out.exists() and "notify pre INSTANCE web MASTER 150"
                        in out.read_text())
            await lb1.daemon.stop()
            await until(lambda: "STOP" in out.read_text().split("\n")[-2])
        finally:
            for n in (lb1, lb2):
                if n.daemon is not None and n.daemon.control is not None:
                    await n.daemon.stop()

    asyncio.run(main())
    calls = out.read_text().splitlines()
    # lb1 starts as Backup (RFC 5798 §6.4.1: Initialize -> Backup below priority 255)
    assert calls == ["backup arg1 two words", "notify pre INSTANCE web BACKUP 150",
                     "master arg1 two words", "notify pre INSTANCE web MASTER 150",
                     "stop arg1 two words", "notify pre INSTANCE web STOP 150"]


def test_hook_command_lines_are_checked(tmp_path: Path) -> None:
    """The program of a hook command line must be an absolute path (on this host: executable);
    a quote left open is refused with the key's line."""
    path = write_config(tmp_path, "lb1", 100, notify_master="relative.sh arg")
    with pytest.raises(ConfigError, match=r"notify_master: 'relative.sh' must be an absolute"):
        parse_config(path.read_text(), path, host=False)
    path = write_config(tmp_path, "lb1", 100, notify_fault="/bin/true 'open")
    with pytest.raises(ConfigError, match=r"notify_fault: .*No closing quotation"):
        parse_config(path.read_text(), path, host=False)
    path = write_config(tmp_path, "lb1", 100, notify_backup=str(tmp_path / "missing.sh"))
    with pytest.raises(ConfigError, match=r"notify_backup: .*No such file"):
        parse_config(path.read_text(), path)
    path = write_config(tmp_path, "lb1", 100, notify_stop="/bin/echo stopped")
    config = parse_config(path.read_text(), path)
    assert config.instances[0].notify_states == {"STOP": "/bin/echo stopped"}
