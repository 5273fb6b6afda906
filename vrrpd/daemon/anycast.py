"""Anycast groups: trackers decide, a BGP speaker announces (README.md "Scaling out").

Every healthy node announces each group's prefixes; the upstream router spreads flows over
the nodes with ECMP.  Per group, from its trackers (:func:`vrrpd.track.status.weigh`, rise/fall
already applied by the trackers):

* a failing weight-0 tracker withdraws the prefixes (the router drops the node from ECMP);
* failing weighted trackers de-prefer them by the sum of their ``|weight|`` (MED added, or AS
  prepended; :class:`vrrpd.config.model.Deprefer`): equal paths only stay in a router's
  multipath set, so the node leaves it but remains a fallback;
* ``vrrpctl demote`` drains: de-prefer as far as it goes, wait until HAProxy's current
  sessions on the node have stayed at zero for a second (or ``drain_timeout``), then
  withdraw (``drain_withdraw``; :mod:`vrrpd.daemon.anycast_drain`);
  ``vrrpctl resume`` ends it.

Like VIPs (:mod:`vrrpd.daemon.runtime`): the start withdraws whatever an earlier run left
announced (the trackers have no result yet, so nothing is wanted), the stop withdraws
everything.  One worker task brings the speaker in line with the wanted announcements, so
changes never overlap and the last word wins.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from vrrpd.config.model import PREPEND_MAX, AnycastGroupConfig, Config, Deprefer
from vrrpd.daemon.anycast_drain import Drain
from vrrpd.kernel.bgp import MED_MAX, Announcement, PeerState, Speaker, SpeakerError
from vrrpd.track.status import TrackStatus, weigh

log = logging.getLogger("vrrpd.anycast")

PEER_POLL = 1.0  # seconds between looks at the speaker's sessions (``vrrpctl status``)
RETRY = 1.0  # seconds before a refused or failed change is tried again


class AnycastGroups:
    """The configured groups, their wanted and announced state, and the speaker."""

    def __init__(self, config: Config, speaker: Speaker,
                 record: Callable[..., None]) -> None:
        self.config = config
        self.speaker = speaker
        self._record = record
        self.groups = {g.name: g for g in config.anycast}
        self.statuses: dict[str, TrackStatus] = {}
        self.drains: dict[str, Drain] = {}
        self.announced: dict[str, Announcement | None] = {n: None for n in self.groups}
        self.peers: list[PeerState] = []
        self.peers_error: str | None = None
        self.error: str | None = None  # the last failed change, until one succeeds
        self._running = False
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # ---- what is wanted ----------------------------------------------------------------

    def _weights(self, cfg: AnycastGroupConfig) -> list[tuple[int, TrackStatus]]:
        tracks = self.config.tracks
        out = []
        for ref in cfg.track:
            weight = tracks[ref.name].weight if ref.weight is None else ref.weight
            status = self.statuses.get(ref.name)
            out.append((weight, status or TrackStatus(ref.name, False, "no result yet", 0)))
        return out

    def wanted(self, name: str) -> Announcement | None:
        """What group ``name`` should announce now (None: withdrawn).  Nothing until every
        tracker it follows has its first result: a weighted one without a result would make
        the first announcement de-preferred, and its first result a second BGP update."""
        cfg = self.groups[name]
        if not all(ref.name in self.statuses for ref in cfg.track):
            return None
        delta, faulted = weigh(self._weights(cfg))
        drain = self.drains.get(name)
        if not self._running or faulted or (drain is not None and drain.done is not None
                                            and cfg.drain_withdraw):
            return None
        penalty = max(0, -delta)
        if drain is not None:
            penalty = MED_MAX if cfg.deprefer is Deprefer.MED else PREPEND_MAX
        if cfg.deprefer is Deprefer.MED:
            return Announcement(name, cfg.prefixes, min(MED_MAX, cfg.med + penalty), 0)
        return Announcement(name, cfg.prefixes, cfg.med, min(PREPEND_MAX, penalty))

    def on_status(self, status: TrackStatus) -> None:
        """A tracker's status changed (every tracker's, also the instances')."""
        self.statuses[status.name] = status
        if status.name in self.used_trackers():
            self._changed.set()

    def used_trackers(self) -> set[str]:
        """The trackers some group follows."""
        return {ref.name for g in self.groups.values() for ref in g.track}

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, withdraw what an earlier run left announced, start the worker."""
        await self.speaker.open()
        left = await self.speaker.announced()
        if left:
            by_group: dict[str, list[Any]] = {}
            for prefix, group in left.items():
                by_group.setdefault(group, []).append(prefix)
            for group, prefixes in by_group.items():
                await self.speaker.withdraw(group, tuple(prefixes))
            log.warning("withdrew %s left announced by an earlier run (startup reconcile); "
                        "groups announce again once their trackers pass",
                        ", ".join(f"{p} ({g})" for p, g in sorted(left.items(), key=str)))
        self._running = True
        self._tasks = [asyncio.create_task(self._work(), name="anycast"),
                       asyncio.create_task(self._poll_peers(), name="anycast-peers")]
        self._changed.set()

    async def stop(self) -> None:
        """Withdraw every group's prefixes, then close the speaker."""
        self._running = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for name, cfg in self.groups.items():
            try:
                await self.speaker.withdraw(name, cfg.prefixes)
                self.announced[name] = None
            except SpeakerError as exc:
                log.error("[anycast %s] withdrawing at stop failed: %s; the next start "
                          "withdraws what is left", name, exc)
        await self.speaker.close()

    async def _work(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            for name in self.groups:
                want = self.wanted(name)
                if want == self.announced[name]:
                    continue
                try:
                    await self._apply(name, want)
                except SpeakerError as exc:
                    self.error = str(exc)
                    log.error("[anycast %s] %s; trying again in %gs", name, exc, RETRY)
                    asyncio.get_running_loop().call_later(RETRY, self._changed.set)
                else:
                    self.error = None

    async def _apply(self, name: str, want: Announcement | None) -> None:
        before = self.announced[name]
        if want is None:
            await self.speaker.withdraw(name, self.groups[name].prefixes)
        else:
            await self.speaker.announce(want)
        self.announced[name] = want
        what = self._state(name)
        prefixes = ", ".join(map(str, self.groups[name].prefixes))
        weight = f" (MED {want.med}, prepend {want.prepend})" if want is not None else ""
        log.info("[anycast %s] %s %s%s via %s", name, prefixes, what, weight,
                 self.speaker.describe())
        self._record("anycast", group=name, state=what, before=before is not None,
                     med=want.med if want else None, prepend=want.prepend if want else None)

    async def _poll_peers(self) -> None:
        while True:
            try:
                self.peers, self.peers_error = await self.speaker.peers(), None
            except SpeakerError as exc:
                self.peers_error = str(exc)
            await asyncio.sleep(PEER_POLL)

    # ---- drain --------------------------------------------------------------------------

    async def drain(self, names: list[str]) -> dict[str, Any]:
        """De-prefer ``names`` now, wait for their HAProxy sessions to reach zero (or each
        group's ``drain_timeout``), then withdraw (``drain_withdraw``).  Returns per group
        how it ended."""
        for name in names:
            self.drains.setdefault(name, Drain())
        self._changed.set()
        results = await asyncio.gather(*(self.drains[n].wait(n, self.groups[n])
                                          for n in names))
        self._changed.set()
        for _ in range(100):  # let the worker withdraw before answering
            if all(self.announced[n] == self.wanted(n) for n in names):
                break
            await asyncio.sleep(0.01)
        return dict(zip(names, results, strict=True))

    def resume(self, names: list[str]) -> None:
        for name in names:
            self.drains.pop(name, None)
        self._changed.set()

    # ---- status -------------------------------------------------------------------------

    def _state(self, name: str) -> str:
        """One of :data:`vrrpd.kernel.bgp.GROUP_STATES`: what group ``name`` announces now."""
        now, cfg = self.announced[name], self.groups[name]
        if now is None:
            return "withdrawn"
        return "announced" if now.med == cfg.med and not now.prepend else "de-preferred"

    def status(self) -> list[dict[str, Any]]:
        """Each group: wanted and announced state, and per peer router what it was sent."""
        out = []
        for name, cfg in self.groups.items():
            now = self.announced[name]
            drain = self.drains.get(name)
            out.append({
                "name": name, "prefixes": [str(p) for p in cfg.prefixes],
                "state": self._state(name),
                "med": now.med if now else None, "prepend": now.prepend if now else None,
                "draining": None if drain is None else {"done": drain.done,
                                                         "sessions": drain.sessions},
                "trackers": [{"name": ref.name, "weight": w, "ok": st.ok, "detail": st.detail}
                             for ref, (w, st) in zip(cfg.track, self._weights(cfg),
                                                     strict=True)],
                "peers": [{"router": p.address, "session": p.state, "bfd": p.bfd,
                           "advertised": [str(x) for x in cfg.prefixes if x in p.advertised]}
                          for p in self.peers],
            })
        return out

    def speaker_status(self) -> dict[str, Any]:
        return {"speaker": self.speaker.describe(), "error": self.error,
                "peers_error": self.peers_error,
                "peers": [asdict(p) | {"advertised": [str(x) for x in p.advertised]}
                          for p in self.peers]}
