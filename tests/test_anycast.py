"""Anycast groups (issue 18): the ``anycast:``/``bgp:`` schema, and the daemon driving a BGP
speaker from its trackers -- with :class:`vrrpd.kernel.fakes.FakeSpeaker`; the lab
(tests/lab/test_anycast_lab.py) proves the same with FRR."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Callable
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from status_docs import ANYCAST, BGP

from tests.daemon_helpers import until
from tests.test_frr_speaker import FakeBgpd
from vrrpd.cli.render import render_status
from vrrpd.config.loader import ConfigError, load_config, parse_config
from vrrpd.config.model import Deprefer
from vrrpd.control.health import assess
from vrrpd.daemon.anycast import AnycastGroups
from vrrpd.daemon.metrics import StatusCollector
from vrrpd.daemon.ports import Kernel
from vrrpd.daemon.runtime import Daemon
from vrrpd.kernel.bgp import MED_MAX, Announcement
from vrrpd.kernel.fakes import FakeAddressManager, FakeInterfaceWatcher, FakeSpeaker
from vrrpd.track.status import TrackStatus

FILE = Path("/etc/vrrpd/lb1.yaml")
WEB = ip_network("203.0.113.10/32")
GOOD = """\
node: lb1
bgp: {engine: frr, socket: /run/frr/bgpd.vty}
tracks:
  haproxy: {type: file, path: /run/down, rise: 2}
  backends: {type: file, path: /run/slow, weight: -50}
anycast:
  - name: pacs
    prefixes: [203.0.113.10/32, 2001:db8:18::10/128]
    track: [haproxy, backends]
    med: 10
"""


def refusal(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, FILE, host=False)
    return caught.value


def test_an_anycast_only_node_needs_no_vrrp_instance() -> None:
    config = parse_config(GOOD, FILE, host=False)
    (group,) = config.anycast
    assert config.instances == ()
    assert group.prefixes == (WEB, ip_network("2001:db8:18::10/128"))
    assert [r.name for r in group.track] == ["haproxy", "backends"]
    assert (group.med, group.deprefer, group.drain_timeout) == (10, Deprefer.MED, 30.0)
    assert config.bgp is not None and str(config.bgp.socket) == "/run/frr/bgpd.vty"


@pytest.mark.parametrize(("old", "new", "line", "words"), [
    ("203.0.113.10/32, ", "203.0.113.10/24, ", 8, "has host bits set"),
    ("203.0.113.10/32, ", "224.0.0.5/32, ", 8, "not unicast"),
    ("track: [haproxy, backends]", "track: [haproxy, nope]", 9, "unknown tracker 'nope'"),
    ("    med: 10", "    med: -1", 10, "outside 0..4294967294"),
    ("    med: 10", "    deprefer: prepend", 9, "prepend the AS 50 times"),
    ("bgp: {engine: frr, socket: /run/frr/bgpd.vty}\n", "", 5, "add `bgp:`"),
    ("engine: frr", "engine: bird", 2, "'bird' is not one of frr"),
    ("2001:db8:18::10/128]", "2001:db8:18::/64]\n    haproxy_socket: /run/h.sock", 8,
     "counts HAProxy's sessions per address"),
    ("    med: 10", "    med: 10\n  - {name: web, prefixes: [203.0.113.10/32]}", 11,
     "a prefix belongs to one group"),
])
def test_mistakes_are_refused_with_file_line_and_key(old: str, new: str, line: int,
                                                     words: str) -> None:
    assert old in GOOD
    err = refusal(GOOD.replace(old, new))
    assert (err.file, err.line) == (FILE, line), str(err)
    assert words in str(err)


# ---- the daemon and a speaker ---------------------------------------------------------------


class Lab:
    """One daemon with a fake speaker; trackers are files the test writes."""

    def __init__(self, tmp: Path, speaker: FakeSpeaker | None = None, **group: Any) -> None:
        self.tmp = tmp
        self.speaker = speaker or FakeSpeaker()
        self.down, self.slow = tmp / "down", tmp / "slow"
        doc = {"node": "lb1", "control_socket": str(tmp / "ctl.sock"),
               "state_dir": str(tmp / "state"), "bgp": {"engine": "frr"},
               "tracks": {"haproxy": {"type": "file", "path": str(self.down), "rise": 2,
                                      "interval": 0.05},
                          "backends": {"type": "file", "path": str(self.slow), "weight": -50,
                                       "interval": 0.05}},
               "anycast": [{"name": "pacs", "prefixes": [str(WEB)],
                            "track": ["haproxy", "backends"], "med": 10, **group}]}
        (tmp / "lb1.yaml").write_text(yaml.safe_dump(doc))
        self.daemon: Daemon | None = None

    async def start(self) -> Daemon:
        kernel = Kernel(open_socket=None, group=None, addresses=FakeAddressManager(),  # type: ignore[arg-type]
                        announcer=None, interfaces=FakeInterfaceWatcher,  # type: ignore[arg-type]
                        speaker=lambda cfg: self.speaker)
        self.daemon = Daemon(load_config(self.tmp / "lb1.yaml", host=False), kernel)
        await self.daemon.start()
        return self.daemon

    def announced(self) -> Announcement | None:
        return self.speaker.table.get(WEB)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_trackers_announce_weigh_and_withdraw(tmp_path: Path) -> None:
    """Announced only after the gating tracker's rise count; a failing weighted tracker
    raises the MED by its weight; a failing weight-0 tracker withdraws; stop withdraws."""
    lab = Lab(tmp_path)

    async def main() -> None:
        daemon = await lab.start()
        await until(lambda: lab.announced() is not None)
        assert [e[0] for e in lab.speaker.log] == ["announce"]  # rise 2: once, not per check
        assert lab.announced() == Announcement("pacs", (WEB,), 10, 0)
        lab.slow.write_text("1\n")  # the file tracker: 1 x weight -50
        await until(lambda: (lab.announced() or Announcement("", ())).med == 60)
        lab.slow.unlink()
        await until(lambda: (lab.announced() or Announcement("", ())).med == 10)
        lab.down.write_text("1\n")
        await until(lambda: lab.announced() is None)
        lab.down.unlink()
        await until(lambda: lab.announced() is not None)
        status = daemon.status()["anycast"][0]
        assert status["state"] == "announced"
        await daemon.stop()
        assert lab.announced() is None
        assert lab.speaker.log[-1][0] == "withdraw"

    run(main())


def test_the_first_announcement_waits_for_every_trackers_first_result(tmp_path: Path) -> None:
    """Trackers publish their first results in any order (the stress run once had the weighted
    one last): until both have one, nothing is announced, so the node announces once, with
    the right MED, not de-preferred and then again."""
    lab = Lab(tmp_path)

    async def main() -> None:
        groups = AnycastGroups(load_config(tmp_path / "lb1.yaml", host=False), lab.speaker,
                               lambda *_, **__: None)
        await groups.start()
        groups.on_status(TrackStatus("haproxy", True, "file absent", 0.0))
        assert groups.wanted("pacs") is None
        groups.on_status(TrackStatus("backends", True, "file absent", 0.0))
        assert groups.wanted("pacs") == Announcement("pacs", (WEB,), 10, 0)
        await until(lambda: lab.announced() is not None)
        await groups.stop()
        assert [e[0] for e in lab.speaker.log] == ["announce", "withdraw"]

    run(main())


def test_start_withdraws_what_a_crashed_run_left(tmp_path: Path) -> None:
    speaker = FakeSpeaker()
    speaker.table[WEB] = Announcement("pacs", (WEB,))
    stale = ip_network("198.51.100.0/24")
    speaker.table[stale] = Announcement("gone", (stale,))
    lab = Lab(tmp_path, speaker)
    lab.down.write_text("1\n")  # failing: nothing may be announced

    async def main() -> None:
        daemon = await lab.start()
        assert speaker.table == {}
        await asyncio.sleep(0.3)
        assert speaker.table == {}
        await daemon.stop()

    run(main())


def test_an_unreachable_speaker_stops_the_start_with_what_to_check(tmp_path: Path) -> None:
    speaker = FakeSpeaker()
    speaker.down = "cannot reach FRR bgpd at /run/frr/bgpd.vty"
    lab = Lab(tmp_path, speaker)

    async def main() -> None:
        with pytest.raises(OSError, match="cannot reach FRR bgpd"):
            await lab.start()
        assert lab.daemon is not None
        await lab.daemon.stop()

    run(main())


# One session of HAProxy 2.6's `show sess all` (shortened)
SESSIONS = """\
0x564e3665b730: [30/Nov/2026:13:57:22.311278] id=66 proto=tcpv4 source=198.51.100.10:46492
  flags=0x4b, conn_retries=0, conn_exp=<NEVER> conn_et=0x000 srv_conn=0x564e36568f00
  frontend=web (id=5 mode=tcp), listener=? (id=1) addr={service}
  backend=web (id=5 mode=tcp) addr=192.0.2.11:52096
  server=pacs1 (id=1) addr=192.0.2.30:104
"""


class FakeHAProxy:
    """A stats socket answering ``show sess all`` with ``sessions`` on the service address
    and one on loopback (a tracker's check), which a drain does not wait for."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sessions = 3
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_unix_server(self._answer, str(self.path))

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(SESSIONS.format(service="203.0.113.10:80").encode() * self.sessions
                     + SESSIONS.format(service="127.0.0.1:104").encode())
        await writer.drain()
        writer.close()


@pytest.mark.parametrize("deprefer", ["med", "prepend"])
def test_demote_drains_then_withdraws_and_resume_announces(tmp_path: Path,
                                                           deprefer: str) -> None:
    """Drain: de-preferred at once (MED to its maximum, or 10 prepends), withdrawn once the
    node's HAProxy has no session left, announced again by ``resume``."""
    lab = Lab(tmp_path, haproxy_socket=str(tmp_path / "stats.sock"), deprefer=deprefer,
              drain_timeout=10, track=["haproxy"])
    haproxy = FakeHAProxy(tmp_path / "stats.sock")

    async def main() -> None:
        await haproxy.start()
        daemon = await lab.start()
        await until(lambda: lab.announced() is not None)
        from vrrpd.control.commands import demote, resume
        drain = asyncio.create_task(demote(daemon, {}))
        expect = (10, 10) if deprefer == "prepend" else (MED_MAX, 0)
        await until(lambda: (lab.announced() or Announcement("", ())).prepend == expect[1]
                    and lab.announced().med == expect[0])  # type: ignore[union-attr]
        assert not drain.done()  # 3 sessions left
        await until(lambda: 'vrrpd_anycast_drain_sessions{group="pacs"} 3.0'
                    in scrape(daemon.status))
        assert 'vrrpd_anycast_draining{group="pacs"} 1.0' in scrape(daemon.status)
        haproxy.sessions = 0
        result = await drain
        assert result["drained"]["pacs"]["result"] == "sessions reached 0"
        assert lab.announced() is None
        assert daemon.status()["anycast"][0]["state"] == "withdrawn"
        assert 'vrrpd_anycast_draining{group="pacs"} 0.0' in scrape(daemon.status)
        await resume(daemon, {})
        await until(lambda: lab.announced() == Announcement("pacs", (WEB,), 10, 0))
        await daemon.stop()

    run(main())


# ---- --check-config and the status text -----------------------------------------------------


def test_check_config_reaches_the_speaker_or_says_why_not(tmp_path: Path) -> None:
    """``vrrpd --check-config`` connects to bgpd's vty socket and lists its neighbours; an
    unreachable bgpd fails the check (exit 1) saying what to look at."""

    socket_path = tmp_path / "bgpd.vty"
    path = tmp_path / "vrrpd.yaml"
    path.write_text(GOOD.replace("/run/frr/bgpd.vty", str(socket_path))
                    .replace("/run/down", str(tmp_path / "down"))
                    .replace("/run/slow", str(tmp_path / "slow")))

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vrrpd", "--check-config", "-c", str(path)],
                              capture_output=True, text=True, timeout=60)

    down = check()
    assert down.returncode == 1
    assert f"cannot reach FRR bgpd at {socket_path}" in down.stderr
    loop = asyncio.new_event_loop()
    bgpd = FakeBgpd(socket_path)
    loop.run_until_complete(bgpd.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        up = check()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    assert up.returncode == 0, up.stderr
    assert "reachable; neighbours: 192.0.2.1 Established (BFD Up)" in up.stdout
    assert "OK (0 instance(s), 1 anycast group(s))" in up.stdout


def test_status_text_shows_each_group_and_each_router(tmp_path: Path) -> None:
    lab = Lab(tmp_path)

    async def main() -> str:
        daemon = await lab.start()
        await until(lambda: lab.announced() is not None)
        anycast = daemon.anycast
        assert anycast is not None
        anycast.peers = await lab.speaker.peers()  # as the next poll would
        text = render_status(daemon.status())
        await daemon.stop()
        return text

    text = run(main())
    assert "anycast via fake speaker" in text
    assert "pacs   203.0.113.10/32  announced  10   0        -" in text, text
    assert ("pacs: router 192.0.2.1 session Established, BFD Up, announced: 203.0.113.10/32"
            in text), text


def scrape(status: Callable[[], dict[str, Any]]) -> str:
    registry = CollectorRegistry()
    registry.register(StatusCollector(status))
    return generate_latest(registry).decode()


def test_metrics_follow_the_group_and_the_router_session(tmp_path: Path) -> None:
    """The anycast series from the daemon's own status: announced with its MED, the router's
    session and BFD up; then withdrawn (no MED sample) with the session down."""
    lab = Lab(tmp_path)

    async def main() -> list[str]:
        daemon = await lab.start()
        anycast = daemon.anycast
        assert anycast is not None
        await until(lambda: lab.announced() is not None)
        anycast.peers = await lab.speaker.peers()  # as the next poll would
        bodies = [scrape(daemon.status)]
        assert set(daemon.status()["anycast"][0]) == set(ANYCAST[0])  # status_docs' shape
        assert set(daemon.status()["bgp"]) == set(BGP)
        lab.down.write_text("1\n")
        await until(lambda: lab.announced() is None)
        lab.speaker.session = "Active"
        anycast.peers = await lab.speaker.peers()
        bodies.append(scrape(daemon.status))
        await daemon.stop()
        return bodies

    up, down = run(main())
    group, router = 'group="pacs"', 'router="192.0.2.1"'
    for line in (f'vrrpd_anycast_state{{{group},state="announced"}} 1.0',
                 f'vrrpd_anycast_state{{{group},state="withdrawn"}} 0.0',
                 f"vrrpd_anycast_med{{{group}}} 10.0", f"vrrpd_anycast_prepend{{{group}}} 0.0",
                 f"vrrpd_anycast_draining{{{group}}} 0.0", f"vrrpd_bgp_peer_up{{{router}}} 1.0",
                 f"vrrpd_bgp_peer_bfd_up{{{router}}} 1.0", "vrrpd_bgp_speaker_error 0.0"):
        assert line in up, (line, up)
    for line in (f'vrrpd_anycast_state{{{group},state="withdrawn"}} 1.0',
                 f"vrrpd_bgp_peer_up{{{router}}} 0.0"):
        assert line in down, (line, down)
    assert "vrrpd_anycast_med{" not in down


def test_check_verdict_covers_groups_and_sessions(tmp_path: Path) -> None:
    """``vrrpctl check``: announced is OK; a withdrawn group WARNING (naming the failing
    tracker); a router session down CRITICAL."""
    lab = Lab(tmp_path)

    async def main() -> list[dict[str, Any]]:
        daemon = await lab.start()
        anycast = daemon.anycast
        assert anycast is not None
        await until(lambda: lab.announced() is not None)
        anycast.peers = await lab.speaker.peers()
        verdicts = [assess(daemon.status())]
        lab.down.write_text("1\n")
        await until(lambda: lab.announced() is None)
        lab.speaker.session = "Active"
        anycast.peers = await lab.speaker.peers()
        verdicts.append(assess(daemon.status()))
        await daemon.stop()
        return verdicts

    ok, bad = run(main())
    assert (ok["status"], ok["summary"]) == ("OK", "lb1: pacs announced"), ok
    assert bad["status"] == "CRITICAL"
    assert [p["text"] for p in bad["problems"]] == [
        "BGP session to 192.0.2.1 Active: nothing announced reaches it",
        "pacs withdrawn (failing: haproxy)"], bad


def test_vrrpctl_demote_waits_as_long_as_the_longest_drain(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``vrrpctl demote`` on an anycast node answers when the drain ends, which may take
    up to the longest ``drain_timeout`` the loader accepts: vrrpctl must not give up first
    (it said "timed out" while the drain went on); other commands keep the usual wait."""
    from vrrpd.cli import vrrpctl
    from vrrpd.config.model import ANYCAST_DRAIN_TIMEOUT_MAX
    from vrrpd.control.client import TIMEOUT

    waits: dict[str, float] = {}

    def answer(path: str, cmd: str, args: dict[str, Any], *, timeout: float) -> Any:
        waits[cmd] = timeout
        return {"mode": "drained", "drained": {}} if cmd == "demote" else \
            {"mode": "normal", "resumed": ["pacs"]}

    monkeypatch.setattr(vrrpctl, "request", answer)
    assert vrrpctl.main(["--socket", "/run/vrrpd/none.sock", "demote"]) == 0
    assert vrrpctl.main(["--socket", "/run/vrrpd/none.sock", "resume"]) == 0
    assert waits == {"demote": TIMEOUT + ANYCAST_DRAIN_TIMEOUT_MAX, "resume": TIMEOUT}
    too_long = f"    drain_timeout: {ANYCAST_DRAIN_TIMEOUT_MAX + 1:g}\n"
    assert "drain_timeout" in str(refusal(GOOD + too_long))
