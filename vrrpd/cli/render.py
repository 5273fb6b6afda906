"""Text rendering of the control dicts (the same dicts ``vrrpctl --json`` prints)."""

from __future__ import annotations

import json
import time
from typing import Any


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
        for t in i.get("trackers", []):
            lines.append(f"  {i['name']}: tracker {t['name']} {'OK' if t['ok'] else 'FAILED'}"
                         f"{' weight ' + str(t['weight']) if t.get('weight') else ''}"
                         f"{' - ' + t['detail'] if t.get('detail') else ''}")
        if i["faults"]:
            lines.append(f"  {i['name']}: FAULT because of {', '.join(i['faults'])}")
        if i.get("interface_problem"):
            lines.append(f"  {i['name']}: waiting for {i['interface']}: "
                         f"{i['interface_problem']}")
        for t in i["transitions"][-3:]:
            when = time.strftime("%H:%M:%S", time.localtime(t["at"]))
            lines.append(f"  {i['name']}: {when} {t['old']} -> {t['new']}: {t['reason']}")
    drops = [f"{e['interface']} IPv{e['family']}: "
             + ",".join(f"{k}={v}" for k, v in sorted(e["dropped"].items()))
             for e in doc.get("endpoints", []) if e["dropped"]]
    if drops:
        lines.append("dropped before reaching an instance: " + "; ".join(drops))
    return "\n".join(lines)


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


def render(cmd: str, result: dict[str, Any]) -> str:
    if cmd == "status":
        return render_status(result)
    if cmd.startswith("sync-"):
        from vrrpd.cli.sync_cli import render_sync

        return render_sync(cmd, result)
    if cmd == "help":
        return "\n".join(f"{c['usage']:<40} {c['summary']}" for c in result["commands"])
    if "states" in result:
        return "\n".join(f"{n}: {s}" for n, s in result["states"].items())
    if cmd == "reload":
        return render_reload(result)
    if cmd == "version":
        return f"vrrpd {result['version']} on {result['node']}"
    return json.dumps(result, indent=2)
