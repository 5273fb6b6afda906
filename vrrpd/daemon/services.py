"""The daemon's optional parts: the listeners of HAProxy config sync (``config_sync:``) and
metrics (``metrics:``), and anycast groups (``anycast:``).  The listeners are built from a
configuration without side effects (so a reload can build them before it changes anything),
started and stopped by the daemon, swapped live by a reload.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from vrrpd.config.model import Config
from vrrpd.daemon.ports import Kernel
from vrrpd.daemon.tracking import InstanceTracking

if TYPE_CHECKING:  # imported when configured: it reads HAProxy's stats, BGP speakers
    from vrrpd.daemon.anycast import AnycastGroups

log = logging.getLogger("vrrpd")


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def build_config_sync(config: Config, is_source: Callable[[], bool],
                      handlers: dict[str, Any] | None = None) -> Service | None:
    """``config_sync:``: the source is the MASTER of ``config_sync.instance``; bad keys raise
    OSError.  ``handlers`` serve other ops on its channel (the drain's, :mod:`vrrpd.drain`)."""
    if config.config_sync is None:
        return None
    from vrrpd.configsync.service import ConfigSyncService

    service = ConfigSyncService(config.config_sync, config.state_dir, config.node, is_source)
    service.handlers.update(handlers or {})
    return service


def build_metrics(config: Config, status: Callable[[], dict[str, Any]]) -> Service | None:
    """``metrics:``: the Prometheus endpoint."""
    if config.metrics is None:
        return None
    from vrrpd.daemon.metrics import MetricsServer

    return MetricsServer(status, *config.metrics.listen)


async def swap(what: str, old: Service | None, new: Service | None) -> None:
    """Stop ``old`` and start ``new`` (a changed listen address, key, peer list...).  If
    ``new`` cannot start, ``old`` is started again and the OSError goes to the caller."""
    if old is not None:
        await old.stop()
    if new is None:
        return
    try:
        await new.start()
    except OSError:
        await new.stop()
        if old is not None:
            try:
                await old.start()
            except OSError as exc:
                log.error("%s: the previous configuration cannot start again either: %s",
                          what, exc)
        raise


async def start_anycast(config: Config, kernel: Kernel, tracking: InstanceTracking | None,
                        record: Callable[..., None]) -> AnycastGroups | None:
    """Anycast groups (:mod:`vrrpd.daemon.anycast`) follow the trackers from their first
    result on; their start withdraws what a crashed run left announced."""
    if not config.anycast or config.bgp is None or kernel.speaker is None or tracking is None:
        return None
    from vrrpd.daemon.anycast import AnycastGroups

    anycast = AnycastGroups(config, kernel.speaker(config.bgp), record)
    tracking.listeners.append(anycast.on_status)
    await anycast.start()
    return anycast
