"""``interface`` tracker: link state from rtnetlink events, no polling.

The tracker subscribes to ``RTMGRP_LINK`` before asking for the link's current state, so no
change can slip between the two.  Passing means operational state UP (RFC 2863 ifOperStatus);
``UNKNOWN`` counts as up when the link is administratively up and RUNNING, which is how
loopback and some virtual drivers report a working link.  A link going down, or disappearing,
fails the tracker at once; coming back up counts towards ``rise`` (the periodic tick re-counts
the current state every ``interval``).

Option (converted by the config loader): ``interface`` (str).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pyroute2.iproute.linux import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTMGRP_LINK

from vrrpd.config.model import InterfaceOptions, TrackConfig, TrackType, options_of
from vrrpd.track.base import StatusCallback, Tracker
from vrrpd.track.status import CheckResult

IFF_UP = 0x1
IFF_RUNNING = 0x40
ENODEV = 19


class InterfaceTracker(Tracker):
    """Passes while the interface is operationally up."""

    kind = TrackType.INTERFACE

    def __init__(self, config: TrackConfig, on_status: StatusCallback) -> None:
        super().__init__(config, on_status)
        self.interface = options_of(config, InterfaceOptions).interface
        self._current = CheckResult(False, f"{self.interface}: state not read yet")
        self._index: int | None = None

    async def run(self) -> None:
        async with AsyncIPRoute() as ipr:
            await ipr.bind(groups=RTMGRP_LINK)
            try:
                links = await ipr.link("get", ifname=self.interface)
            except NetlinkError as exc:
                if exc.code != ENODEV:
                    raise
                links = []
            self._current = self._link_result(links[0] if links else None)
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._listen(ipr))
                tasks.create_task(super().run())

    async def check(self) -> CheckResult:
        return self._current

    async def _listen(self, ipr: AsyncIPRoute) -> None:
        while True:
            async for msg in ipr.get():
                self._event(msg)

    def _event(self, msg: Any) -> None:
        name, index = msg.get("ifname"), msg.get("index")
        if name != self.interface and index != self._index:
            return
        gone = msg["event"] == "RTM_DELLINK" or name != self.interface
        result = self._link_result(None if gone else msg)
        if result == self._current:
            return
        self._current = result
        if result.ok:
            self.record(result)
        else:
            self.fail_now(result.detail)

    def _link_result(self, msg: Any) -> CheckResult:
        if msg is None:
            self._index = None
            return CheckResult(False, f"{self.interface}: no such interface")
        self._index = msg["index"]
        state = msg.get("IFLA_OPERSTATE") or "UNKNOWN"
        running = msg["flags"] & (IFF_UP | IFF_RUNNING) == IFF_UP | IFF_RUNNING
        ok = state == "UP" or (state == "UNKNOWN" and running)
        return CheckResult(ok, f"{self.interface}: operstate {state}")
