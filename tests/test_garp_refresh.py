"""keepalived's garp_master_refresh (issue 15 part 2): ``announce.refresh`` repeats a burst of
``refresh_count`` gratuitous ARPs / unsolicited NAs while master, and stops when the VIPs go.

Two daemons on an in-memory link (kernel fakes, as tests/test_daemon.py); the fake announcer
records every burst.
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


def test_refresh_while_master_only(tmp_path: Path) -> None:
    announce = {"count": 3, "interval": 0, "repeat_delay": 0.1, "refresh": 1,
                "refresh_count": 2}

    async def main() -> None:
        link = FakeLink()
        lb1 = Node(link, tmp_path, "lb1", "192.0.2.11", 150, announce=announce)
        lb2 = Node(link, tmp_path, "lb2", "192.0.2.12", 100, announce=announce)
        try:
            await lb1.start()
            await lb2.start()
            await until(lambda: lb1.state() is State.MASTER and lb2.state() is State.BACKUP)
            bursts = lb1.announcers["lo"].bursts
            await asyncio.sleep(2.5)  # the burst, the second one at 0.1 s, refreshes at ~1.1, 2.1
            assert [count for _vips, count, _ in bursts] == [3, 3, 2, 2]
            await lb1.daemon.stop()  # the VIPs go: no more refreshes
            await until(lambda: lb2.state() is State.MASTER)
            await asyncio.sleep(1.5)
            assert len(bursts) == 4
            assert [c for _v, c, _ in lb2.announcers["lo"].bursts][:2] == [3, 3]
        finally:
            for n in (lb1, lb2):
                if n.daemon is not None and n.daemon.control is not None:
                    await n.daemon.stop()

    asyncio.run(main())


@pytest.mark.parametrize("refresh", [0.5, 100000])
def test_refresh_interval_is_bounded(tmp_path: Path, refresh: float) -> None:
    path = write_config(tmp_path, "lb1", 100, announce={"refresh": refresh})
    with pytest.raises(ConfigError, match=r"must be 0 \(no refresh\) or 1..86400 seconds"):
        parse_config(path.read_text(), path, host=False)
