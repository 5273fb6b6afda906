"""The ConfigSyncService: keeps the listed HAProxy files identical on the peers.

The *source* is the node that is MASTER of ``config_sync.instance``.  It polls the listed files
every :data:`POLL` seconds (stat first, hash only when size/mtime moved) and, when their manifest
changes or it has just become master, pushes the whole set to every peer.  Before a push it
asks the peer's status: it never pushes over a peer that holds a newer generation, nor over a
backup whose files were edited locally (diverged), unless forced
(``vrrpctl config-sync push --force``).

The receiver accepts only pinned peers, only generations newer than its own (a replayed or
older push is refused) and applies through :class:`~vrrpd.configsync.apply.Applier`.  Its
generation, applied manifest hash and last push result survive restarts in
``state_dir/sync.json``.  The service only reacts to transitions (DESIGN.md seam 5): it can
never delay a takeover.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from vrrpd.config.model import ConfigSyncConfig
from vrrpd.configsync import bundle as bundles
from vrrpd.configsync import policy
from vrrpd.configsync.apply import Applier, ApplyError, read_local
from vrrpd.configsync.confirm import confirmer
from vrrpd.configsync.tls import Identity, PinError
from vrrpd.configsync.transport import ConfigSyncServer, TransportError, call
from vrrpd.daemon.persist import write_atomic

log = logging.getLogger("vrrpd.configsync")

POLL = 0.25
RETRY = 5.0  # seconds before pushing again to a peer that could not be reached
PEER_POLL = 10.0  # seconds between status questions to the peers (metrics, `vrrpctl check`;
#                  a push's outcome counts as an answer)
HEADER_SLACK = 64 * 1024


class ConfigSyncService:
    """Config sync for one node: server for pushes, watcher/pusher while source."""

    def __init__(self, config: ConfigSyncConfig, state_dir: Path, node: str,
                 is_source: Callable[[], bool]) -> None:
        self.config = config
        self.node = node
        self.is_source = is_source
        names = [p.name for p in config.files]
        if len(set(names)) != len(names):
            raise OSError(f"config sync: listed files travel by name and must have distinct names: "
                          f"{', '.join(names)}")
        try:
            self.identity = Identity(config.cert)
        except PinError as exc:
            raise OSError(f"config sync: {exc}") from None
        self.pins = frozenset(config.peer_fingerprints)
        self.applier = Applier(config.files, config.validate, config.reload,
                               confirm=confirmer(config.master_socket, config.stats_socket,
                                                 config.pidfile))
        self.state_path = state_dir / "sync.json"
        self.state: dict[str, Any] = self._load()
        max_frame = config.max_file_size * len(config.files) + HEADER_SLACK
        self.server = ConfigSyncServer(self.identity, self.pins, *config.listen, self._handle,
                                 max_frame, tuple(host for host, _ in config.peers))
        self._lock = asyncio.Lock()  # one apply or push at a time
        self._watch: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self._stat: tuple[tuple[int, int], ...] | None = None
        self._retry_at: float | None = None
        self._stopping = False
        self._poll: asyncio.Task[None] | None = None
        # each peer's last status answer (or error) with its "sync" comparison and "at" time
        self.peer_states: dict[str, dict[str, Any]] = {}
        self.local_state: dict[str, Any] = {}  # local_status() as of the last poll
        # other requests pinned peers may make on this channel, by op (the drain's, vrrpd.drain)
        self.handlers: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {}

    # ---- state -----------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {"generation": 0}
        except (OSError, ValueError) as exc:
            log.error("config sync: unreadable %s (%s); starting at generation 0", self.state_path,
                      exc)
            return {"generation": 0}
        return doc if isinstance(doc, dict) else {"generation": 0}

    async def _save(self, **changes: Any) -> None:
        """Update the state and write it (atomically, fsync'd) from a worker thread."""
        self.state.update(changes)
        try:
            await asyncio.to_thread(write_atomic, self.state_path,
                                    json.dumps(self.state, indent=1).encode())
        except OSError as exc:
            log.error("config sync: cannot save %s: %s", self.state_path, exc)

    @property
    def generation(self) -> int:
        return int(self.state.get("generation", 0))

    def local_bundle(self, generation: int | None = None) -> bundles.Bundle:
        """The listed files as they are now (blocking: reads them all)."""
        return bundles.Bundle(generation or self.generation,
                              read_local(self.config.files, self.config.max_file_size))

    async def read_bundle(self) -> bundles.Bundle:
        """:meth:`local_bundle` from a worker thread: a slow disk never holds up the loop."""
        return await asyncio.to_thread(self.local_bundle)

    def _diverged(self, live_hash: str) -> bool:
        """Files edited here since the last bundle we applied (or pushed)."""
        applied = self.state.get("manifest_hash")
        return applied is not None and applied != live_hash

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        await self.server.start()
        self._watch = asyncio.create_task(self._watch_files())
        self._poll = asyncio.create_task(self._poll_peers())
        log.info("config sync: listening on %s:%d as sha256:%s, generation %d, source of %s",
                 self.config.listen[0], self.server.port, self.identity.fingerprint,
                 self.generation, self.config.instance)

    async def stop(self) -> None:
        self._stopping = True
        for task in (self._watch, self._poll):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.server.stop()

    def on_transition(self, instance: str, new_state: str) -> None:
        """Becoming MASTER of the sync instance: check the peers and push if they lag."""
        if instance == self.config.instance and new_state == "MASTER":
            self._kick.set()

    # ---- source side -----------------------------------------------------------------

    def _stat_files(self) -> tuple[tuple[int, int], ...]:
        out = []
        for path in self.config.files:
            try:
                st = os.stat(path)
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((0, -1))
        return tuple(out)

    async def _watch_files(self) -> None:
        # A flag as well as the cancel in stop(), and asyncio.timeout rather than wait_for
        # here and in the transport: on Python 3.11 wait_for can swallow a cancel that lands
        # as the awaited operation ends, and this loop then never ended (stop() hung;
        # tests/test_configsync_transport.py hung 1 run in ~15).
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL):
                    await self._kick.wait()
            now = asyncio.get_running_loop().time()
            kicked = self._kick.is_set() or (self._retry_at is not None and now >= self._retry_at)
            self._kick.clear()
            stat = await asyncio.to_thread(self._stat_files)
            if not self.is_source() or (stat == self._stat and not kicked):
                continue
            self._stat = stat
            try:
                live = (await self.read_bundle()).manifest_hash()
                if kicked or live != self.state.get("pushed_hash"):
                    await self.push()
            except (ApplyError, OSError) as exc:
                log.error("config sync: cannot read the listed files: %s", exc)

    async def push(self, force: bool = False) -> dict[str, Any]:
        """Push the live files to every peer that needs them; one result per peer."""
        async with self._lock:
            local = await self.read_bundle()
            live = local.manifest_hash()
            results = {}
            for host, port in self.config.peers:
                peer = f"{host}:{port}"
                results[peer] = await self._push_one(host, port, local, live, force)
                self._pushed(peer, results[peer])
                await self._save(last_push={"at": time.time(), "peer": peer, **results[peer]})
            unreachable = any(r.get("unreachable") for r in results.values())
            self._retry_at = asyncio.get_running_loop().time() + RETRY if unreachable else None
            await self._save(pushed_hash=live, manifest_hash=live)
            return {"generation": self.generation, "manifest_hash": live, "peers": results}

    async def _push_one(self, host: str, port: int, local: bundles.Bundle, live: str,
                        force: bool) -> dict[str, Any]:
        try:
            status = await call(self.identity, self.pins, host, port, {"op": "status"})
            theirs = int(status.get("generation", 0))
            if not force:
                if theirs > self.generation:
                    return {"ok": False, "error": f"peer holds a newer generation ({theirs} > "
                            f"{self.generation}); not pushing over it (--force to override)"}
                if status.get("diverged"):
                    return {"ok": False, "error": "peer's files were edited locally "
                            "(diverged); not overwriting them (--force to override)"}
                if status.get("manifest_hash") == live:
                    return {"ok": True, "message": "already in sync",
                            "generation": theirs}
            generation = max(theirs, self.generation) + 1
            await self._save(generation=generation)
            bundle = bundles.Bundle(generation, local.files)
            reply = await call(self.identity, self.pins, host, port,
                               {"op": "push", "force": force}, bundles.encode(bundle))
        except TransportError as exc:
            reply = {"ok": False, "error": str(exc), "unreachable": True}
        log_ = log.info if reply.get("ok") else log.error
        log_("config sync: push to %s:%d: %s", host, port,
             reply.get("message") or reply.get("error"))
        return reply

    # ---- receiver side ---------------------------------------------------------------

    async def _handle(self, header: dict[str, Any], tail: bytes, peer_fp: str
                      ) -> dict[str, Any]:
        op = header.get("op")
        if op == "status":
            return await self.local_status()
        if op == "push":
            return await self._receive(tail, bool(header.get("force")), peer_fp)
        if isinstance(op, str) and op in self.handlers:
            return await self.handlers[op](header)
        return {"ok": False, "error": f"unknown op {op!r}"}

    async def tell(self, header: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
        """Send one request to every peer at once; their answers (an unreachable peer's is
        ``{"ok": False, "error": ...}``)."""
        async def one(host: str, port: int) -> dict[str, Any]:
            try:
                async with asyncio.timeout(timeout):
                    return await call(self.identity, self.pins, host, port, header,
                                      timeout=timeout)
            except (TransportError, TimeoutError) as exc:
                return {"ok": False, "error": f"{host}:{port}: {exc or 'timed out'}"}
        return list(await asyncio.gather(*(one(h, p) for h, p in self.config.peers)))

    async def _receive(self, payload: bytes, force: bool, peer_fp: str) -> dict[str, Any]:
        async with self._lock:
            result = await self._apply(payload, force)
            await self._save(last_push={"at": time.time(), "peer": f"sha256:{peer_fp[:16]}…",
                                  "received": True, **result})
            return result

    async def _apply(self, payload: bytes, force: bool) -> dict[str, Any]:
        try:
            bundle = bundles.decode(payload, (p.name for p in self.config.files),
                                    self.config.max_file_size)
        except bundles.BundleError as exc:
            return {"ok": False, "error": f"refused: {exc}"}
        if bundle.generation <= self.generation:
            return {"ok": False, "error": f"refused: generation {bundle.generation} is not "
                    f"newer than ours ({self.generation}): a replayed or older push"}
        try:
            if not self.config.allow_code:
                live = dict(await asyncio.to_thread(read_local, self.config.files,
                                                    self.config.max_file_size))
                added = policy.new_code(bundle.files, live)
                if added:
                    log.error("config sync: %s", policy.refusal(added))
                    return {"ok": False, "error": policy.refusal(added)}
            if not force and self._diverged((await self.read_bundle()).manifest_hash()):
                return {"ok": False, "error": "refused: the files here were edited locally "
                        "since the last sync (diverged); `vrrpctl config-sync push --force` on "
                        "the source overwrites them"}
            output = await self.applier.apply(bundle)
        except ApplyError as exc:
            return {"ok": False, "error": str(exc)}
        digest = bundle.manifest_hash()
        await self._save(generation=bundle.generation, manifest_hash=digest, pushed_hash=digest)
        self._stat = await asyncio.to_thread(self._stat_files)
        log.info("config sync: applied generation %d (%s)", bundle.generation, digest[:12])
        return {"ok": True, "message": f"applied generation {bundle.generation}",
                "generation": bundle.generation, "manifest_hash": digest,
                "validator": output, "reload": self.applier.confirmed or None}

    # ---- status ----------------------------------------------------------------------

    async def local_status(self) -> dict[str, Any]:
        try:
            live = (await self.read_bundle()).manifest_hash()
        except ApplyError as exc:
            return {"node": self.node, "generation": self.generation, "error": str(exc)}
        applied = self.state.get("manifest_hash")
        return {"node": self.node, "generation": self.generation, "manifest_hash": live,
                "applied_manifest_hash": applied,
                # while a push is being applied the new files are on disk before the state
                # records them: that is not a local edit
                "applying": self._lock.locked(),
                "diverged": (not self.is_source() and not self._lock.locked()
                             and self._diverged(live)),
                # never received nor pushed a bundle: the first push replaces these files
                # (a fresh backup holds the distribution's haproxy.cfg; that is not diverged)
                "never_synced": applied is None,
                "source": self.is_source(), "fingerprint": self.identity.fingerprint}

    async def status(self) -> dict[str, Any]:
        """Local and peer generations/manifests and how they compare."""
        local = await self.local_status()
        peers = {}
        for host, port in self.config.peers:
            try:
                peer = await call(self.identity, self.pins, host, port, {"op": "status"},
                                  timeout=5.0)
            except TransportError as exc:
                peers[f"{host}:{port}"] = {"error": str(exc), "sync": "unknown"}
                continue
            peer["sync"] = compare(local, peer)
            peers[f"{host}:{port}"] = peer
        now = time.time()
        self.local_state = local
        self.peer_states = {p: {**doc, "at": now} for p, doc in peers.items()}
        return {"local": local, "peers": peers, "last_push": self.state.get("last_push"),
                "listener": self.server.gate.status()}

    def cached_status(self) -> dict[str, Any]:
        """Like :meth:`status` without reading files or asking the peers: the last poll's
        answers (every :data:`PEER_POLL` seconds; a push's outcome counts as the peer's
        answer).  For the metrics and ``vrrpctl status``/``check``."""
        return {"local": self.local_state, "peers": self.peer_states,
                "last_push": self.state.get("last_push")}

    async def _poll_peers(self) -> None:
        self.local_state = await self.local_status()
        while not self._stopping:
            await asyncio.sleep(PEER_POLL)
            try:
                await self.status()
            except Exception:  # a failing poll must not end the service
                log.exception("config sync: asking the peers for their status failed")

    def _pushed(self, peer: str, result: dict[str, Any]) -> None:
        """A push's outcome is the peer's state until the next poll."""
        if result.get("ok"):
            state = {"sync": "in-sync", "generation": result.get("generation", self.generation)}
        elif result.get("unreachable"):
            state = {"sync": "unknown", "error": result.get("error")}
        else:
            return  # refused (diverged, newer): the next poll says how they compare
        self.peer_states[peer] = {**state, "at": time.time()}


def compare(local: dict[str, Any], peer: dict[str, Any]) -> str:
    """``in-sync``, ``diverged`` (a side edited locally), ``never-synced`` (the receiving side
    has never applied a bundle: the next push replaces its files without ``--force``),
    ``behind`` or ``ahead`` (this node)."""
    if local.get("diverged") or peer.get("diverged"):
        return "diverged"
    if local.get("manifest_hash") == peer.get("manifest_hash"):
        return "in-sync"
    receiver = peer if local.get("source") else local
    if receiver.get("never_synced"):
        return "never-synced"
    return "behind" if peer.get("generation", 0) > local.get("generation", 0) else "ahead"
