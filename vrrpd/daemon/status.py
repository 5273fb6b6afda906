"""The ``vrrpctl status`` document, which the metrics and health verdicts are built from
(:mod:`vrrpd.daemon.metrics`, :mod:`vrrpd.control.health`): the daemon's and each instance's
part."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from vrrpd import __version__
from vrrpd.daemon.logs import BoundedQueueHandler

if TYPE_CHECKING:
    from vrrpd.daemon.instance import InstanceDriver
    from vrrpd.daemon.runtime import Daemon


def daemon_status(d: Daemon) -> dict[str, Any]:
    """Node, version, every instance and endpoint, and the config sync as last heard (no
    network round trip)."""
    trackers = d.tracking.instance_status if d.tracking is not None else None
    hooks = d.hooks.runners if d.hooks is not None else {}
    sync = d.config_sync.cached_status() if d.config_sync is not None else None
    return {"node": d.config.node, "version": __version__,
            "config": str(d.config.path), **d.instances.status(trackers),
            "log_lines_dropped": BoundedQueueHandler.dropped,
            "notify_coalesced": {k: r.coalesced for k, r in hooks.items() if r.coalesced},
            "config_sync": sync,
            **({"anycast": d.anycast.status(), "bgp": d.anycast.speaker_status()}
               if d.anycast is not None else {})}


def instance_status(d: InstanceDriver) -> dict[str, Any]:
    cfg, r = d.cfg, d.router
    return {
        "name": cfg.name,
        "interface": cfg.interface,
        "vrid": cfg.vrid,
        "version": cfg.version,
        "family": cfg.family,
        "state": r.state.value,
        "since": d.state_since,
        "time_in_state": round(time.time() - d.state_since, 3),
        "priority": cfg.priority,
        "effective_priority": r.priority,
        "preempt": r.preempt,
        "admin": r.admin.value,
        "faults": sorted(r.faults),
        "master": str(r.master_address) if r.master_address else None,
        "foreign_master": r.foreign_master,
        "peers": [str(p) for p in cfg.peers],
        "strict_peers": cfg.strict_peers,
        "vips": [str(v) for v in cfg.vips],
        "vips_held": d.holding.held,
        "accept_mode": d.router.accepts,
        "virtual_mac": ({"link": d.vmac.name, "mac": d.vmac.mac.hex(":")}
                        if d.vmac is not None else None),
        "advert_interval": cfg.advert_interval_cs / 100,
        "master_advert_interval": r.master_adver_int / 100,
        "checksum_form": d.router.send_form.value if cfg.version == 3 else None,
        # for `vrrpctl check` and the metrics: is someone else master, is anyone?
        "last_master_advert": d.last_master_advert,
        "master_down_interval": round(r.master_down_interval(), 3),
        "transitions": [t.as_dict() for t in d.history],
        "counters": dict(d.counters),
        "dropped": dict(d.drops),
    }
