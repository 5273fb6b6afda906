"""Text rendering of the control dicts (the same dicts ``vrrpctl --json`` prints)."""

from __future__ import annotations

import json
from typing import Any

from vrrpd.timefmt import iso


def _age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def _tracker_line(owner: str, t: dict[str, Any]) -> str:
    return (f"  {owner}: tracker {t['name']} {'OK' if t['ok'] else 'FAILED'}"
            f"{' weight ' + str(t['weight']) if t.get('weight') else ''}"
            f"{' - ' + t['detail'] if t.get('detail') else ''}")


def render_status(doc: dict[str, Any]) -> str:
    rows = [["INSTANCE", "IF", "VRID", "STATE", "PRIO", "MASTER", "VIPS", "INTERVAL", "SINCE",
             "SENT/RCVD", "DROPPED"]]
    for i in doc["instances"]:
        prio = str(i["effective_priority"])
        if i["effective_priority"] != i["priority"]:
            prio += f"/{i['priority']}"
        state = i["state"] + ("" if i["admin"] == "normal" else f" ({i['admin']})")
        interval = f"{i['advert_interval']:g}s"
        if i["master_advert_interval"] != i["advert_interval"]:
            interval += f" (learned {i['master_advert_interval']:g}s)"
        c = i["counters"]
        rows.append([
            i["name"], i["interface"], f"{i['vrid']} v{i['version']}", state, prio,
            (i["master"] or "-") + (" (foreign master)" if i.get("foreign_master") else ""),
            ",".join(i["vips"]) + (" *" if i["vips_held"] else ""),
            interval, _age(i["time_in_state"]),
            f"{c.get('adverts_sent', 0)}/{c.get('adverts_received', 0)}",
            ",".join(f"{k}={v}" for k, v in sorted(i["dropped"].items())) or "-"])
    lines = [f"node {doc['node']}  vrrpd {doc['version']}  config {doc['config']}",
             _table(rows), "(* = VIPs held by this node)"]
    for i in doc["instances"]:
        lines += [_tracker_line(i["name"], t) for t in i.get("trackers", [])]
        if i["faults"]:
            lines.append(f"  {i['name']}: FAULT because of {', '.join(i['faults'])}")
        if i.get("interface_problem"):
            lines.append(f"  {i['name']}: waiting for {i['interface']}: "
                         f"{i['interface_problem']}")
        for t in i["transitions"][-3:]:
            lines.append(f"  {i['name']}: {iso(t['at'])} {t['old']} -> {t['new']}: "
                         f"{t['reason']}")
        lines += _drain_lines(i)
    lines += _anycast_lines(doc)
    drops = [f"{e['interface']} IPv{e['family']}: "
             + ",".join(f"{k}={v}" for k, v in sorted(e["dropped"].items()))
             for e in doc.get("endpoints", []) if e["dropped"]]
    if drops:
        lines.append("dropped before reaching an instance: " + "; ".join(drops))
    health = doc.get("health")
    if health:
        lines.append(f"health: {health['status']}" + "".join(
            f"\n  {p['severity']}: {p['text']}" for p in health["problems"]))
    return "\n".join(lines)


def _drain_lines(i: dict[str, Any]) -> list[str]:
    """The draining hand-over (:mod:`vrrpd.drain`): the old master's drain, the new master's
    forwarding."""
    drain, lines = i.get("drain") or {}, []
    if drain.get("draining"):
        d = drain["draining"]
        sessions = "?" if d["sessions"] is None else d["sessions"]
        lines.append(f"  {i['name']}: draining: {sessions} sessions, {d['left']:.0f} s left"
                     + (f" (forwarded by {d['peer']})" if d.get("peer") else ""))
    if drain.get("forwarding"):
        f = drain["forwarding"]
        peer = ("" if f["peer_sessions"] is None else
                f" (it drains {f['peer_sessions']} sessions, {f['peer_left']:.0f} s left)")
        lines.append(f"  {i['name']}: forwarding unknown flows to {f['to']}{peer}")
    return lines


def _anycast_lines(doc: dict[str, Any]) -> list[str]:
    """Each anycast group, its trackers and what each peer router was sent."""
    if not doc.get("anycast"):
        return []
    bgp = doc["bgp"]
    lines = [f"anycast via {bgp['speaker']}"
             + (f"  ERROR: {bgp['error']}" if bgp.get("error") else "")
             + (f"  (peers unknown: {bgp['peers_error']})" if bgp.get("peers_error") else "")]
    rows = [["GROUP", "PREFIXES", "STATE", "MED", "PREPEND", "DRAIN"]]
    for g in doc["anycast"]:
        drain = g["draining"]
        rows.append([g["name"], ",".join(g["prefixes"]), g["state"],
                     "-" if g["med"] is None else str(g["med"]),
                     "-" if g["prepend"] is None else str(g["prepend"]),
                     "-" if drain is None else (drain["done"] or
                                                f"draining ({drain['sessions']} sessions)")])
    lines.append(_table(rows))
    for g in doc["anycast"]:
        lines += [_tracker_line(g["name"], t) for t in g["trackers"]]
        for p in g["peers"]:
            sent = ",".join(p["advertised"]) or "nothing"
            lines.append(f"  {g['name']}: router {p['router']} session {p['session']}, "
                         f"BFD {p['bfd'] or 'off'}, announced: {sent}")
    return lines


def render_reload(result: dict[str, Any]) -> str:
    """``vrrpctl reload``: what changed, what was applied live, what needs a restart."""
    lines = [f"{key}: {', '.join(result[key])}" for key in ("added", "removed", "restarted",
                                                            "updated") if result.get(key)]
    if result.get("applied"):
        lines.append(f"applied live: {', '.join(result['applied'])}")
    if not lines:
        lines.append("reloaded: nothing changed")
    if result.get("needs_restart"):
        lines.append(f"needs restart: {', '.join(result['needs_restart'])} (read only at "
                     "start: `systemctl restart vrrpd` applies it)")
    return "\n".join(lines)


def render_check(verdict: dict[str, Any]) -> str:
    """One line, monitoring-plugin style: ``VRRPD OK - lb1: pacs MASTER ... | perfdata``."""
    perf = f" | {verdict['perfdata']}" if verdict.get("perfdata") else ""
    return f"VRRPD {verdict['status']} - {verdict['summary']}{perf}"


def render_event(event: dict[str, Any]) -> str:
    """``2026-11-30T11:02:03.123+01:00 transition pacs BACKUP -> MASTER: reason``."""
    fields = {k: v for k, v in event.items() if k not in ("ts", "time", "type")}
    if event["type"] == "transition":
        text = (f"{fields.pop('instance')} {fields.pop('old')} -> {fields.pop('new')}: "
                f"{fields.pop('reason', '')}")
    else:
        text = ""
    rest = " ".join(f"{k}={_plain(v)}" for k, v in fields.items())
    return " ".join(x for x in (event.get("time") or iso(event["ts"]), event["type"], text,
                                rest) if x)


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "-"
    return json.dumps(value) if isinstance(value, str) and " " in value else str(value)


def render(cmd: str, result: dict[str, Any]) -> str:
    if cmd == "status":
        return render_status(result)
    if cmd == "check":
        return render_check(result)
    if cmd.startswith("config-sync-"):
        from vrrpd.cli.configsync_cli import render_config_sync

        return render_config_sync(cmd, result)
    if cmd == "help":
        return "\n".join(f"{c['usage']:<40} {c['summary']}" for c in result["commands"])
    if "states" in result:
        return "\n".join(f"{n}: {s}" for n, s in result["states"].items())
    if cmd == "reload":
        return render_reload(result)
    if cmd == "version":
        return f"vrrpd {result['version']} on {result['node']}"
    return "\n".join(f"{k}: {_plain(v)}" for k, v in result.items())
