"""Reload as a transaction: parse -> validate -> diff -> build -> commit (DESIGN.md seam 6).

:meth:`Reload.prepare` builds everything the new configuration needs off to the side: tracker
runners, notify hook runners, the config-sync and metrics services, and a driver (with its
socket or virtual MAC link) for each added or restarted instance.  If any of it fails, what was
built is thrown away and the daemon runs on exactly as before; the caller gets the reason.
Only then does :meth:`Reload.commit` swap it in: first the listeners that can still fail to
bind (rolled back to the previous ones if they do), then the instances, groups, hooks and
trackers, which cannot.

What a reload cannot apply (the control socket, the state directory, the node name, the log
format) is listed under ``needs_restart`` in the answer; ``vrrpctl reload`` prints it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vrrpd.config.diff import ConfigDiff, diff_configs
from vrrpd.config.loader import ConfigError, load_config
from vrrpd.config.model import Config
from vrrpd.control.registry import CommandError
from vrrpd.daemon.groups import SyncGroups
from vrrpd.daemon.instance import InstanceDriver
from vrrpd.daemon.notify import NotifyHooks
from vrrpd.daemon.services import Service, build_config_sync, build_metrics, swap
from vrrpd.proto.events import Startup
from vrrpd.track.base import Tracker

if TYPE_CHECKING:
    from vrrpd.daemon.runtime import Daemon

log = logging.getLogger("vrrpd")

HOOK_RETIRE_WAIT = 5.0  # seconds the hooks a reload drops get to finish what is queued


@dataclass
class Prepared:
    """Everything a reload to ``config`` built, not yet in service."""

    config: Config
    diff: ConfigDiff
    trackers: dict[str, Tracker] = field(default_factory=dict)
    hooks: NotifyHooks | None = None
    config_sync: Service | None = None
    metrics: Service | None = None
    drivers: list[InstanceDriver] = field(default_factory=list)


class Reload:
    """One reload of ``daemon`` from its configuration file."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    async def run(self) -> dict[str, Any]:
        """Reload; :class:`CommandError` (nothing changed) when the new file cannot be run."""
        old = self.daemon.config
        try:
            new = load_config(old.path)
        except (ConfigError, OSError) as exc:
            raise CommandError(f"configuration refused, still running the previous one: "
                               f"{exc}") from None
        prepared = await self.prepare(new, diff_configs(old, new))
        await self.commit(prepared)
        return self.report(prepared.diff)

    async def prepare(self, new: Config, diff: ConfigDiff) -> Prepared:
        d = self.daemon
        p = Prepared(new, diff)
        try:
            if d.tracking is not None:
                p.trackers = d.tracking.prepare(new)
            p.hooks = NotifyHooks.build(new, keep=d.hooks)
            if diff.config_sync_changed:
                p.config_sync = build_config_sync(new, d.is_sync_source, d.channel_handlers)
            if diff.metrics_changed:
                p.metrics = build_metrics(new, d.status)
            by_name = {i.name: i for i in new.instances}
            for name in diff.added + diff.restarted:
                p.drivers.append(await d.instances.build(by_name[name]))
        except (ValueError, OSError, RuntimeError) as exc:
            await self._discard(p)
            raise CommandError(f"configuration refused, still running the previous one: "
                               f"{exc}") from None
        return p

    async def _discard(self, p: Prepared) -> None:
        if p.hooks is not None and self.daemon.hooks is not None:
            await p.hooks.close_except(self.daemon.hooks, wait=0)
        await self.daemon.instances.discard(p.drivers)

    async def commit(self, p: Prepared) -> None:
        d = self.daemon
        try:
            if p.diff.metrics_changed:
                await swap("metrics", d.metrics, p.metrics)
                d.metrics = p.metrics
            if p.diff.config_sync_changed:
                await swap("config_sync", d.config_sync, p.config_sync)
                d.config_sync = p.config_sync
        except OSError as exc:
            await self._discard(p)
            raise CommandError(f"configuration refused, still running the previous one: "
                               f"{exc}") from None
        for name in p.diff.removed + p.diff.restarted:
            await d.instances.remove(name)
        d.config = p.config
        for name in p.diff.updated:
            await d.instances.drivers[name].reconfigure(p.diff.changed[name])
        for driver in p.drivers:
            d.instances.register(driver)
        await d.instances.reconcile(p.drivers)
        d.interfaces.look(p.config)
        d.groups = SyncGroups(p.config.sync_groups, d.instances.drivers.__getitem__)
        assert p.hooks is not None
        if d.hooks is not None:
            await d.hooks.close_except(p.hooks, wait=HOOK_RETIRE_WAIT)
        d.hooks = p.hooks
        if d.tracking is not None:
            await d.tracking.commit(p.config, p.trackers)
        for driver in p.drivers:
            driver.post(Startup())

    def report(self, diff: ConfigDiff) -> dict[str, Any]:
        notify = any("notify" in c.fields for c in diff.changed.values())
        live = [what for what, changed in (("notify", notify), ("tracks", bool(diff.tracks)),
                                           ("sync_groups", diff.sync_groups_changed),
                                           ("config_sync", diff.config_sync_changed),
                                           ("metrics", diff.metrics_changed)) if changed]
        result = {"added": list(diff.added), "removed": list(diff.removed),
                  "restarted": list(diff.restarted), "updated": list(diff.updated),
                  "unchanged": list(diff.unchanged), "applied": live,
                  "needs_restart": list(diff.settings)}
        if diff.settings:
            log.warning("reload: %s changed; that takes effect only when vrrpd restarts",
                        ", ".join(diff.settings))
        log.info("configuration reloaded from %s: %s", self.daemon.config.path,
                 ", ".join(f"{k} {v}" for k, v in result.items()
                           if v and k not in ("unchanged", "needs_restart"))
                 or "nothing changed")
        self.daemon.events.record("reload", **result)
        return result


async def reload_on_signal(daemon: Daemon) -> None:
    """SIGHUP: reload; a refusal is logged, as no one waits for an answer."""
    try:
        await daemon.reload()
    except CommandError as exc:
        log.error("SIGHUP: %s", exc)
