"""``interface`` tracker: veth link events inside a fresh network namespace.

The tracker runs in a child process started with ``ip netns exec`` (its netlink socket must be
opened inside the namespace); it prints every status change as a JSON line.  Its interval is
10 s, so each change seen within the test's 2 s bound came from a netlink event.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2"
    ),
]

REPO = Path(__file__).resolve().parent.parent
HELPER = Path(__file__).resolve().parent / "track_helpers" / "iface_watch.py"


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"vrtrack-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def ip(ns: str, *args: str) -> float:
    """Run ``ip -n ns ...``; returns the time just before it ran."""
    before = time.time()
    subprocess.run(["ip", "-n", ns, *args], check=True)
    return before


@asynccontextmanager
async def watching(ns: str, interface: str) -> AsyncIterator[asyncio.StreamReader]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", ns, sys.executable, str(HELPER), interface,
        stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        yield proc.stdout
    finally:
        proc.kill()
        await proc.wait()


async def next_status(stdout: asyncio.StreamReader) -> dict[str, object]:
    line = await asyncio.wait_for(stdout.readline(), 5)
    assert line, "tracker process exited"
    return json.loads(line)


def test_link_down_up_and_removal_are_events(netns: str) -> None:
    ip(netns, "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b")
    ip(netns, "link", "set", "veth-a", "up")
    ip(netns, "link", "set", "veth-b", "up")

    async def scenario() -> None:
        async with watching(netns, "veth-a") as out:
            first = await next_status(out)
            assert (first["ok"], first["detail"]) == (True, "veth-a: operstate UP")

            at = ip(netns, "link", "set", "veth-b", "down")  # peer down: LOWERLAYERDOWN
            down = await next_status(out)
            assert (down["ok"], down["detail"]) == (False, "veth-a: operstate LOWERLAYERDOWN")
            assert down["at"] - at < 2  # type: ignore[operator]

            at = ip(netns, "link", "set", "veth-b", "up")
            up = await next_status(out)
            assert (up["ok"], up["detail"]) == (True, "veth-a: operstate UP")
            assert up["at"] - at < 2  # type: ignore[operator]

            ip(netns, "link", "del", "veth-a")  # the kernel reports it DOWN, then deleted
            gone = await next_status(out)
            assert gone["ok"] is False
            ip(netns, "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-e")
            ip(netns, "link", "set", "veth-e", "up")
            ip(netns, "link", "set", "veth-a", "up")  # a new ifindex under the same name
            back = await next_status(out)
            assert (back["ok"], back["detail"]) == (True, "veth-a: operstate UP")

    asyncio.run(scenario())


def test_missing_interface_fails_then_appears(netns: str) -> None:
    async def scenario() -> None:
        async with watching(netns, "veth-c") as out:
            first = await next_status(out)
            assert (first["ok"], first["detail"]) == (False, "veth-c: no such interface")
            ip(netns, "link", "add", "veth-c", "type", "veth", "peer", "name", "veth-d")
            ip(netns, "link", "set", "veth-d", "up")
            ip(netns, "link", "set", "veth-c", "up")
            up = await next_status(out)
            assert (up["ok"], up["detail"]) == (True, "veth-c: operstate UP")

    asyncio.run(scenario())


def test_loopback_reports_unknown_but_running(netns: str) -> None:
    ip(netns, "link", "set", "lo", "up")

    async def scenario() -> dict[str, object]:
        async with watching(netns, "lo") as out:
            return await next_status(out)

    status = asyncio.run(scenario())
    assert (status["ok"], status["detail"]) == (True, "lo: operstate UNKNOWN")
