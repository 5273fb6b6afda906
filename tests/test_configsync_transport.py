"""Two ConfigSyncServices on 127.0.0.1 in one loop, real TLS 1.3: pinning, replay, partial
frames."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from vrrpd.config.model import ConfigSyncConfig
from vrrpd.configsync import bundle as bundles
from vrrpd.configsync.service import ConfigSyncService
from vrrpd.configsync.tls import keygen
from vrrpd.configsync.transport import U32, call, encode_frame, open_session


class Node:
    """One node's directory: cert, listed files, state dir; its service once built."""

    def __init__(self, tmp: Path, name: str) -> None:
        self.name = name
        self.dir = tmp / name
        (self.dir / "etc").mkdir(parents=True)
        self.cert = self.dir / "sync.pem"
        self.fingerprint = keygen(self.cert, name)
        self.cfg = self.dir / "etc" / "haproxy.cfg"
        self.map = self.dir / "etc" / "hosts.map"
        self.cfg.write_text(f"# {name}\n")
        self.map.write_text("")
        self.source = False
        self.service: ConfigSyncService | None = None

    def build(self, peer_port: int, pins: list[str], listen_port: int = 0) -> ConfigSyncService:
        config = ConfigSyncConfig(listen=("127.0.0.1", listen_port),
                                  peers=(("127.0.0.1", peer_port),), cert=self.cert,
                                  peer_fingerprints=tuple(pins),
                                  files=(self.cfg, self.map), validate="test -s {path}",
                                  reload=f"echo reloaded >> {self.dir}/reloads",
                                  instance="web", max_file_size=4096)
        self.service = ConfigSyncService(config, self.dir / "state", self.name, lambda: self.source)
        return self.service


def pair(tmp: Path, body: Callable[[Node, Node], Awaitable[None]]) -> None:
    """lb1 (source) and lb2 pin each other; run ``body`` with both services started."""

    async def main() -> None:
        a, b = Node(tmp, "lb1"), Node(tmp, "lb2")
        a.source = True
        sb = b.build(0, [a.fingerprint])
        await sb.start()
        sa = a.build(sb.server.port, [b.fingerprint])
        await sa.start()
        try:
            await body(a, b)
        finally:
            await sa.stop()
            await sb.stop()

    asyncio.run(main())


def svc(node: Node) -> ConfigSyncService:
    assert node.service is not None
    return node.service


def test_pinned_push_is_applied_and_status_is_in_sync(tmp_path: Path) -> None:
    async def body(a: Node, b: Node) -> None:
        a.cfg.write_text("global\n  maxconn 100\n")
        result = await svc(a).push()
        (peer,) = result["peers"].values()
        assert peer["ok"], peer
        assert peer["message"] == "applied generation 1"
        assert b.cfg.read_text() == "global\n  maxconn 100\n"
        assert (b.dir / "reloads").read_text() == "reloaded\n"
        status = await svc(a).status()
        (p,) = status["peers"].values()
        assert p["sync"] == "in-sync" and p["generation"] == 1
        assert status["local"]["manifest_hash"] == p["manifest_hash"]
        assert svc(b).state["last_push"]["ok"] is True

    pair(tmp_path, body)


def test_edit_on_the_source_is_live_on_the_peer_within_a_second(tmp_path: Path) -> None:
    async def body(a: Node, b: Node) -> None:
        await asyncio.sleep(0.3)  # first poll: the kicked-off initial sync settles
        a.cfg.write_text("global\n  maxconn 200\n")
        start = time.monotonic()
        while b.cfg.read_text() != "global\n  maxconn 200\n":
            assert time.monotonic() - start < 1.0, "not synced within 1 s"
            await asyncio.sleep(0.02)

    pair(tmp_path, body)


def test_unpinned_peers_are_refused_both_ways(tmp_path: Path) -> None:
    async def body(a: Node, b: Node) -> None:
        stranger = Node(tmp_path, "mallory")
        s = stranger.build(svc(b).server.port, [b.fingerprint])
        result = await s.push()  # it pins lb2, but lb2 does not pin it
        (peer,) = result["peers"].values()
        assert not peer["ok"]
        assert "authentication refused: client certificate sha256:" in peer["error"]
        assert "not in peer_fingerprints" in peer["error"]
        assert b.cfg.read_text() == "# lb2\n"
        # and a client that does not pin the server never sends anything
        s2 = stranger.build(svc(b).server.port, [a.fingerprint])
        (peer,) = (await s2.push())["peers"].values()
        assert "peer certificate sha256:" in peer["error"] and "not in peer_fingerprints" in \
            peer["error"]

    pair(tmp_path, body)


def test_replayed_or_older_generation_is_refused(tmp_path: Path) -> None:
    async def body(a: Node, b: Node) -> None:
        a.cfg.write_text("v1\n")
        await svc(a).push()
        replay = bundles.encode(bundles.Bundle(1, svc(a).local_bundle().files))
        reply = await call(svc(a).identity, svc(a).pins, "127.0.0.1", svc(b).server.port,
                           {"op": "push"}, replay)
        assert not reply["ok"]
        assert "generation 1 is not newer than ours (1): a replayed or older push" in \
            reply["error"]

    pair(tmp_path, body)


def test_disconnect_mid_transfer_applies_nothing(tmp_path: Path) -> None:
    async def body(a: Node, b: Node) -> None:
        evil = bundles.encode(bundles.Bundle(5, (("haproxy.cfg", b"half\n"),
                                                 ("hosts.map", b""))))
        frame = encode_frame({"op": "push"}, evil)
        _, writer = await open_session(svc(a).identity, svc(a).pins, "127.0.0.1",
                                       svc(b).server.port)
        writer.write(frame[: len(frame) - 3])
        await writer.drain()
        writer.close()
        await asyncio.sleep(0.2)
        assert b.cfg.read_text() == "# lb2\n" and svc(b).generation == 0
        assert not [p for p in (b.dir / "etc").iterdir() if p.name.startswith(".")]

    pair(tmp_path, body)


def test_diverged_backup_is_not_overwritten_until_forced(tmp_path: Path) -> None:
    async def body(a: Node, b: Node) -> None:
        a.cfg.write_text("v1\n")
        await svc(a).push()
        b.cfg.write_text("edited on the backup\n")
        a.cfg.write_text("v2\n")
        status = await svc(a).status()
        (p,) = status["peers"].values()
        assert p["sync"] == "diverged" and p["diverged"] is True
        (peer,) = (await svc(a).push())["peers"].values()
        assert not peer["ok"] and "diverged" in peer["error"]
        assert b.cfg.read_text() == "edited on the backup\n"
        (peer,) = (await svc(a).push(force=True))["peers"].values()
        assert peer["ok"], peer
        assert b.cfg.read_text() == "v2\n"

    pair(tmp_path, body)


def test_new_master_does_not_push_over_a_newer_peer(tmp_path: Path) -> None:
    async def body(a: Node, b: Node) -> None:
        await svc(b)._save(generation=9)
        a.cfg.write_text("stale\n")
        (peer,) = (await svc(a).push())["peers"].values()
        assert not peer["ok"] and "newer generation (9 > 0)" in peer["error"]
        assert b.cfg.read_text() == "# lb2\n"

    pair(tmp_path, body)


def test_validator_failure_goes_back_to_the_sender(tmp_path: Path) -> None:
    async def body(a: Node, b: Node) -> None:
        a.cfg.write_text("")  # `test -s` fails on an empty file
        (peer,) = (await svc(a).push())["peers"].values()
        assert not peer["ok"] and "validation failed (`test -s {path}` exit 1)" in peer["error"]
        assert b.cfg.read_text() == "# lb2\n"
        last: dict[str, Any] = svc(b).state["last_push"]
        assert last["ok"] is False and "validation failed" in last["error"]

    pair(tmp_path, body)


def test_frame_length_prefix_is_big_endian_u32() -> None:
    frame = encode_frame({"op": "status"})
    assert U32.unpack(frame[:4])[0] == len(frame) - 4


def test_a_fresh_receiver_is_never_synced_not_diverged_and_takes_the_first_push(
        tmp_path: Path) -> None:
    """A freshly installed backup holds the distribution's haproxy.cfg: different files, but
    nothing was edited since a sync (there was none), so the first push just replaces them."""
    from vrrpd.cli.configsync_cli import render_config_sync
    from vrrpd.configsync.service import compare

    async def body(a: Node, b: Node) -> None:
        a.source = False  # no start-up push while we look
        status = await svc(a).status()
        (p,) = status["peers"].values()
        assert p["generation"] == 0 and p["never_synced"] and not p["diverged"]
        status["local"]["source"] = True  # as the master sees it
        p["sync"] = compare(status["local"], p)
        assert p["sync"] == "never-synced"
        assert "never-synced (the next push replaces its files" in render_config_sync(
            "config-sync-status", status)
        mine = render_config_sync("config-sync-status", await svc(b).status())
        assert "never synced: the first push replaces these files" in mine
        (peer,) = (await svc(a).push())["peers"].values()
        assert peer["ok"], peer
        assert (await svc(b).status())["local"]["never_synced"] is False

    pair(tmp_path, body)
