"""Status documents as ``vrrpctl status --json`` returns them, built for tests of what judges
or exports them (health verdicts, metrics): a healthy master, changed one way at a time."""

from __future__ import annotations

import copy
from typing import Any

from vrrpd import __version__
from vrrpd.kernel.bgp import MED_MAX

NOW = 1_800_000_000.0
MDI = 0.361  # Master_Down_Interval at 0.1 s adverts, priority 100


def instance(**changes: Any) -> dict[str, Any]:
    base = {"name": "pacs", "state": "MASTER", "since": NOW - 600, "time_in_state": 600.0,
            "priority": 150, "effective_priority": 150, "admin": "normal", "faults": [],
            "master": "192.0.2.11", "foreign_master": False, "vips_held": True,
            "master_down_interval": MDI, "last_master_advert": None,
            "trackers": [{"name": "haproxy", "weight": 0, "ok": True, "detail": "running"}],
            "interface": "eth0", "vrid": 51, "version": 3, "advert_interval": 0.1,
            "master_advert_interval": 0.1, "vips": ["192.0.2.100/24"], "counters": {},
            "dropped": {}, "transitions": [{"at": NOW - 600, "old": "BACKUP", "new": "MASTER",
                                            "reason": "preempting"}]}
    return {**base, **changes}


def doc(*instances: dict[str, Any], config_sync: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"node": "lb1", "version": __version__, "config": "/etc/vrrpd/vrrpd.yaml",
            "instances": list(instances) or [instance()], "endpoints": [],
            "config_sync": config_sync}


def heard(ago: float, source: str = "192.0.2.12", priority: int = 100) -> dict[str, Any]:
    return {"at": NOW - ago, "from": source, "priority": priority}


IN_SYNC = {"local": {"generation": 4, "diverged": False},
           "last_push": {"at": NOW - 60, "ok": True, "peer": "192.0.2.12:7000"},
           "peers": {"192.0.2.12:7000": {"sync": "in-sync", "generation": 4}}}


def sync(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(IN_SYNC)
    for key, value in changes.items():
        out[key] = value
    return out


# the old master draining after a planned hand-over, while its peer forwards (vrrpd.drain)
DRAINING = {"enabled": True, "off": None, "timeout": 600.0, "drains": 1, "forwards": 0,
            "draining": {"sessions": 2, "left": 584.2, "since": 1700000000.0,
                         "timeout": 600.0, "peer": "lb2", "counting": True},
            "forwarding": None}
FORWARDING = {"enabled": True, "off": None, "timeout": 600.0, "drains": 0, "forwards": 1,
              "draining": None,
              "forwarding": {"to": "192.0.2.11", "since": 1700000000.0, "heartbeats": 40,
                             "longest_heartbeat_gap": 0.31, "peer_sessions": 2,
                             "peer_left": 584.0}}


# an anycast node draining its group (`vrrpctl demote`), its router session up (daemon/anycast)
ANYCAST = [{"name": "pacs", "prefixes": ["203.0.113.10/32"], "state": "de-preferred",
            "med": MED_MAX, "prepend": 0, "draining": {"done": None, "sessions": 2},
            "trackers": [{"name": "haproxy", "weight": 0, "ok": True, "detail": "running"}],
            "peers": [{"router": "192.0.2.1", "session": "Established", "bfd": "Up",
                       "advertised": ["203.0.113.10/32"]}]}]
BGP = {"speaker": "FRR bgpd at /run/frr/bgpd.vty", "error": None, "peers_error": None,
       "peers": [{"address": "192.0.2.1", "state": "Established", "bfd": "Up",
                  "advertised": ["203.0.113.10/32"]}]}


def everything() -> dict[str, Any]:
    """A document in which every metric family has a sample: a backup that hears its master,
    with a weighted tracker, drops, endpoint drops and config sync, and an anycast group."""
    status = doc(instance(state="BACKUP", vips_held=False, effective_priority=90,
                          last_master_advert=heard(0.05, "192.0.2.11", 150),
                          counters={"transitions": 2, "adverts_received": 10,
                                    "foreign_adverts": 0},
                          dropped={"ttl": 1},
                          trackers=[{"name": "web", "weight": -60, "ok": True,
                                     "detail": "HTTP 200"}],
                          drain=DRAINING),
                 config_sync=IN_SYNC)
    status["endpoints"] = [{"interface": "eth0", "family": 4, "dropped": {"checksum": 1}}]
    status["anycast"], status["bgp"] = ANYCAST, BGP
    return status
