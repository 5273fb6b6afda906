"""The control commands.  Each returns a dict; ``vrrpctl`` renders it, ``--json`` prints it."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from vrrpd import __version__
from vrrpd.config.model import ANYCAST_DRAIN_TIMEOUT_MAX
from vrrpd.control.health import assess
from vrrpd.control.registry import (
    ALL,
    FORCE,
    INSTANCE,
    Arg,
    CommandError,
    command,
    duration,
    help_dict,
)
from vrrpd.proto.events import AdminMode, State

log = logging.getLogger("vrrpd.control")

POLL = 0.01


def _names(daemon: Any, args: dict[str, Any]) -> list[str]:
    """The instances a command applies to: ``instance`` or ``all``."""
    if args.get("all"):
        return list(daemon.drivers)
    name = args.get("instance")
    if not name:
        if len(daemon.drivers) == 1:
            return list(daemon.drivers)
        raise CommandError(f"name an instance or use --all; configured: "
                           f"{', '.join(daemon.drivers)}")
    if name not in daemon.drivers:
        raise CommandError(f"unknown instance {name!r}; configured: {', '.join(daemon.drivers)}")
    return [name]


def _anycast_groups(daemon: Any, args: dict[str, Any]) -> list[str]:
    """The anycast groups ``demote`` / ``resume`` act on: the one named, or all of them with
    ``--all`` or on a node that runs no VRRP instance (:mod:`vrrpd.daemon.anycast`)."""
    if daemon.anycast is None:
        return []
    name = args.get("instance")
    if name is not None and name in daemon.anycast.groups:
        return [str(name)]
    return list(daemon.anycast.groups) if not name and (args.get("all") or not daemon.drivers) \
        else []


async def _settle(daemon: Any, names: list[str], timeout: float) -> None:
    """Wait until no named instance is in the middle of a hand-over (or ``timeout``)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end and any(daemon.drivers[n].router.handing_over for n in names):
        await asyncio.sleep(POLL)


def _states(daemon: Any, names: list[str]) -> dict[str, str]:
    return {n: daemon.drivers[n].state.value for n in names}


def _handover_timeout(daemon: Any, names: list[str]) -> float:
    return float(max(daemon.drivers[n].router.master_down_interval() for n in names) * 2 + 1)


async def _hand_over(daemon: Any, args: dict[str, Any], mode: AdminMode) -> dict[str, Any]:
    """Demote or maintenance: make-before-break hand-over of every named master."""
    names = _names(daemon, args)
    masters = [n for n in names if daemon.drivers[n].state is State.MASTER]
    await daemon.announce_handover(masters)  # the peer forwards the open connections' packets
    daemon.set_admin(names, mode)
    await _settle(daemon, masters, _handover_timeout(daemon, masters) if masters else 0)
    stuck = [n for n in masters if daemon.drivers[n].state is State.MASTER]
    if stuck and not args.get("force"):
        daemon.set_admin(names, AdminMode.NORMAL)
        raise CommandError(
            f"nobody took over {', '.join(stuck)}: no peer answered, so this node stays MASTER "
            "and nothing changed. Check the peer (`vrrpctl status` there); use --force to "
            f"{mode.value} anyway")
    return {"mode": mode.value, "states": _states(daemon, names), "handed_over": masters}


@command("status", "state, priorities, VIPs, trackers, counters of every instance; "
         "vrrpctl exits 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN", INSTANCE)
async def status(daemon: Any, args: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = daemon.status()
    if args.get("instance"):
        names = _names(daemon, args)
        doc["instances"] = [i for i in doc["instances"] if i["name"] in names]
    doc["health"] = assess(doc)
    return doc


@command("check", "one-line health for Nagios/Icinga: OK, WARNING, CRITICAL (exit 0/1/2)")
async def check(daemon: Any, args: dict[str, Any]) -> dict[str, Any]:
    return assess(daemon.status())


@command("demote", "hand mastership to the peer (make-before-break) and stay BACKUP until "
         "resume; an anycast group drains (de-prefer, wait for HAProxy's sessions to end, "
         "withdraw)", INSTANCE, ALL, FORCE, waits=ANYCAST_DRAIN_TIMEOUT_MAX)
async def demote(daemon: Any, args: dict[str, Any]) -> dict[str, Any]:
    groups = _anycast_groups(daemon, args)
    if groups and not (args.get("all") and daemon.drivers):
        return {"mode": "drained", "drained": await daemon.anycast.drain(groups)}
    result = await _hand_over(daemon, args, AdminMode.DEMOTED)
    if groups:
        result["drained"] = await daemon.anycast.drain(groups)
    return result


@command("promote", "take mastership now, preempting the peer, until resume", INSTANCE, ALL)
async def promote(daemon: Any, args: dict[str, Any]) -> dict[str, Any]:
    names = _names(daemon, args)
    refused = {n: sorted(daemon.drivers[n].faults) for n in names if daemon.drivers[n].faults}
    if refused:
        raise CommandError("cannot promote an instance in FAULT: " + "; ".join(
            f"{n} ({', '.join(f)})" for n, f in refused.items()))
    daemon.set_admin(names, AdminMode.PROMOTED)
    return {"mode": AdminMode.PROMOTED.value, "states": _states(daemon, names)}


@command("resume", "back to the configured behaviour (undo demote/promote)", INSTANCE, ALL)
async def resume(daemon: Any, args: dict[str, Any]) -> dict[str, Any]:
    groups = _anycast_groups(daemon, args)
    if groups:
        daemon.anycast.resume(groups)
        if not (args.get("all") and daemon.drivers):
            return {"mode": AdminMode.NORMAL.value, "resumed": groups}
    names = _names(daemon, args)
    daemon.set_admin(names, AdminMode.NORMAL)
    return {"mode": AdminMode.NORMAL.value, "states": _states(daemon, names)}


@command("maintenance", "on: hand over and never become master (persisted); off: resume",
         Arg(("state",), "on or off", {"choices": ["on", "off"]}), FORCE)
async def maintenance(daemon: Any, args: dict[str, Any]) -> dict[str, Any]:
    state = args.get("state")
    if state not in ("on", "off"):
        raise CommandError("say `maintenance on` or `maintenance off`")
    if state == "off":
        daemon.set_admin(list(daemon.drivers), AdminMode.NORMAL)
        return {"maintenance": False, "states": _states(daemon, list(daemon.drivers))}
    result = await _hand_over(daemon, {**args, "all": True}, AdminMode.MAINTENANCE)
    return {"maintenance": True, **result}


@command("reload", "re-read the configuration; unchanged instances keep their state")
async def reload(daemon: Any, args: dict[str, Any]) -> dict[str, Any]:
    try:
        result: dict[str, Any] = await daemon.reload()
    except CommandError as exc:  # in the log too: `systemctl reload` only says "failed"
        log.error("reload: %s", exc)
        raise
    return result


@command("events", "transition, tracker and link history; --follow streams new events",
         Arg(("--since",), "only events of the last AGE (90s, 10m, 2h, 1d)",
             {"type": duration, "metavar": "AGE"}),
         Arg(("--follow", "-f"), "keep printing new events", {"action": "store_true"}),
         Arg(("--plot",), "draw the events as an SVG timeline (states, priorities, VIP "
             "holder, trackers) instead of printing them; vrrpctl asks for all events and "
             "draws from --since ago", {"metavar": "FILE.svg"}),
         Arg(("--also",), "with --plot: the other node's `vrrpctl events --json` output, so "
             "both nodes are drawn (repeatable)",
             {"metavar": "EVENTS", "action": "append", "default": []}),
         streaming=True)
async def events(daemon: Any, args: dict[str, Any]) -> dict[str, Any]:
    since = args.get("since")
    if since is not None and (not isinstance(since, int | float) or since < 0):
        raise CommandError(f"since must be a number of seconds, not {since!r}")
    start = 0.0 if since is None else time.time() - since
    node = daemon.config.node
    return {"node": node,
            "events": [{**e, "node": node} for e in daemon.events.history if e["ts"] >= start]}


@command("version", "daemon version")
async def version(daemon: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"version": __version__, "node": daemon.config.node}


@command("help", "list the commands")
async def help_(daemon: Any, args: dict[str, Any]) -> dict[str, Any]:
    return help_dict()
