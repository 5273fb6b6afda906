"""Is this node healthy?  The verdict ``vrrpctl status`` exits with and ``vrrpctl check`` prints.

Monitoring-plugin convention (Nagios / Icinga, "Monitoring Plugins Development Guidelines"):
0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.  The daemon judges its own status document, so the
exit code, the one-line check and the metrics never disagree; UNKNOWN (daemon unreachable) is
the client's to say.

CRITICAL -- the VIPs are not being served, or served twice:
  * an instance in FAULT;
  * no VIP holder heard: not MASTER and no advert from a master for Master_Down_Interval;
  * both nodes MASTER: MASTER and still hearing another master's adverts after the
    Master_Down_Interval that a hand-over may take (RFC 5798 §6.4.3: the lower one steps down).
WARNING -- serving, but something needs a look:
  * a tracker with a weight failing (it lowers or no longer raises the priority);
  * a foreign master (a router not in ``peers`` is master);
  * an operator mode left on (maintenance, demoted, promoted);
  * config sync: files edited here (diverged), the last push failed, a peer behind, diverged,
    never synced or not answering.

Anycast groups (README.md "Scaling out"; the other nodes may serve what this one does not):
CRITICAL when the BGP speaker refused or failed the last change, or a session to a router is
not Established; WARNING when a group is withdrawn, de-preferred or draining, or a session's
BFD is not Up.
"""

from __future__ import annotations

import time
from typing import Any

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
SYNC_TROUBLE = ("behind", "ahead", "diverged", "never-synced", "unknown")


def assess(doc: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """``{"code", "status", "summary", "problems": [{severity, instance, text}], "perfdata"}``
    for a ``status`` document (its ``sync`` part optional)."""
    now = time.time() if now is None else now
    problems: list[dict[str, Any]] = []
    for inst in doc["instances"]:
        problems += _instance(inst, now)
    if doc.get("config_sync"):
        problems += _config_sync(doc["config_sync"])
    if doc.get("anycast"):
        problems += _anycast(doc["anycast"], doc["bgp"])
    problems.sort(key=lambda p: -p["severity"])
    code = max((p["severity"] for p in problems), default=OK)
    if problems:
        summary = "; ".join(p["text"] for p in problems)
    else:
        summary = ", ".join([*(_brief(i) for i in doc["instances"]),
                             *(f"{g['name']} {g['state']}" for g in doc.get("anycast", []))]
                            ) or "no instances"
    perf = " ".join(f"{i['name']}_priority={i['effective_priority']} "
                    f"{i['name']}_master={int(i['state'] == 'MASTER')}"
                    for i in doc["instances"])
    return {"code": code, "status": NAMES[code], "summary": f"{doc['node']}: {summary}",
            "problems": [{**p, "severity": NAMES[p["severity"]]} for p in problems],
            "perfdata": perf}


def _anycast(groups: list[dict[str, Any]], bgp: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    if bgp.get("error"):
        out.append({"severity": CRITICAL, "instance": "bgp",
                    "text": f"BGP speaker: {bgp['error']}"})
    for peer in bgp.get("peers", []):
        if peer["state"] != "Established":
            out.append({"severity": CRITICAL, "instance": "bgp", "text": f"BGP session to "
                        f"{peer['address']} {peer['state']}: nothing announced reaches it"})
        elif peer.get("bfd") not in (None, "Up"):
            out.append({"severity": WARNING, "instance": "bgp",
                        "text": f"BFD to {peer['address']} {peer['bfd']}"})
    for g in groups:
        if g["draining"] is not None:
            out.append(_problem(WARNING, g, "draining (`vrrpctl resume` ends it)"
                                if g["draining"]["done"] is None
                                else f"drained: {g['draining']['done']}"))
        elif g["state"] != "announced":
            failing = [t["name"] for t in g["trackers"] if not t["ok"]]
            out.append(_problem(WARNING, g, f"{g['state']}"
                                + (f" (failing: {', '.join(failing)})" if failing else "")))
    return out


def unreachable(reason: str) -> dict[str, Any]:
    """The verdict when the daemon cannot be asked."""
    return {"code": UNKNOWN, "status": NAMES[UNKNOWN], "summary": reason, "problems": [],
            "perfdata": ""}


def _brief(i: dict[str, Any]) -> str:
    held = ", VIPs held" if i["vips_held"] else ""
    return f"{i['name']} {i['state']} (priority {i['effective_priority']}{held})"


def _problem(severity: int, inst: dict[str, Any], text: str) -> dict[str, Any]:
    return {"severity": severity, "instance": inst["name"], "text": f"{inst['name']} {text}"}


def _instance(i: dict[str, Any], now: float) -> list[dict[str, Any]]:
    out = []
    mdi = i["master_down_interval"]
    heard = i.get("last_master_advert")
    if i["state"] == "FAULT":
        out.append(_problem(CRITICAL, i, f"FAULT ({', '.join(i['faults']) or 'no reason'})"))
    if i["state"] != "MASTER" and i["time_in_state"] > mdi and (
            heard is None or now - heard["at"] > mdi):
        ago = "never" if heard is None else f"for {now - heard['at']:.0f}s"
        out.append(_problem(CRITICAL, i, f"no VIP holder heard ({i['state']} here, no "
                                         f"master's advert {ago})"))
    if (i["state"] == "MASTER" and heard is not None and now - heard["at"] <= mdi
            and heard["at"] > i["since"] + mdi):
        out.append(_problem(CRITICAL, i, f"both nodes MASTER: {heard['from']} advertises "
                                         f"priority {heard['priority']} as master too"))
    for t in i.get("trackers", []):
        if t.get("weight") and not t["ok"]:
            out.append(_problem(WARNING, i, f"tracker {t['name']} failing (weight "
                                            f"{t['weight']}): {t.get('detail', '')}"))
    if i.get("foreign_master"):
        out.append(_problem(WARNING, i, f"foreign master {i['master']} (not in peers)"))
    if i["admin"] != "normal":
        out.append(_problem(WARNING, i, f"operator mode {i['admin']} "
                                        f"(`vrrpctl resume` / `maintenance off` ends it)"))
    return out


def _config_sync(s: dict[str, Any]) -> list[dict[str, Any]]:
    out = []

    def warn(text: str) -> None:
        out.append({"severity": WARNING, "instance": None, "text": f"config sync: {text}"})

    local = s.get("local", {})
    if local.get("diverged"):
        warn("the files here were edited since the last sync (diverged)")
    last = s.get("last_push")
    if last and not last.get("ok"):
        warn(f"last push to {last.get('peer')} failed: {last.get('error')}")
    for peer, p in s.get("peers", {}).items():
        if p.get("sync") in SYNC_TROUBLE:
            detail = f": {p['error']}" if p.get("error") else ""
            warn(f"peer {peer} {p['sync']}{detail}")
    return out
