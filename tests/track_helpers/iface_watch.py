"""Run an interface tracker and print each published status as a JSON line.

``python iface_watch.py IFNAME`` -- the interface tests start it with ``ip netns exec`` so that
its netlink socket lives in a fresh namespace.  Runs until killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from vrrpd.config.model import InterfaceOptions, TrackConfig, TrackType
from vrrpd.track.interface import InterfaceTracker
from vrrpd.track.status import TrackStatus


def emit(status: TrackStatus) -> None:
    print(json.dumps({"ok": status.ok, "detail": status.detail, "at": time.time()}), flush=True)


async def main(interface: str) -> None:
    config = TrackConfig(
        "link", TrackType.INTERFACE, interval=10.0, options=InterfaceOptions(interface)
    )
    await InterfaceTracker(config, emit).run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
