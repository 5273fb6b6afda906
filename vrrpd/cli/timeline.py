"""A failover as a picture: both nodes' events (``vrrpctl events --json``) drawn as an SVG
timeline for the post-incident review (``vrrpctl events --since 10m --plot FILE``).

One band per node and VRRP instance shows its state (MASTER, BACKUP, FAULT, INIT) with the
advertised priority written on each stretch; a band per instance shows which node held the
VIPs (a MASTER holds them); one thin band per node and tracker shows it passing or failing.
Each transition is a tick with its time.  Plain SVG written by hand: no plotting library.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

STATE_COLOURS = {"MASTER": "#2e7d32", "BACKUP": "#1565c0", "FAULT": "#c62828",
                 "INIT": "#9e9e9e", "?": "#e0e0e0"}
NODE_COLOURS = ("#6a1b9a", "#ef6c00", "#00838f", "#5d4037")
TRACK_COLOURS = {True: "#81c784", False: "#e57373", None: "#e0e0e0"}
LEFT, RIGHT, TOP = 190, 60, 60  # margins, px
WIDTH = 1100
BAND, TRACK_BAND, GAP = 34, 14, 8


@dataclass
class Lane:
    """A horizontal band: (start, value) steps, each value lasting until the next."""

    kind: str  # "state", "holder" or "tracker"
    label: str
    steps: list[tuple[float, Any]] = field(default_factory=list)

    @property
    def height(self) -> int:
        return TRACK_BAND if self.kind == "tracker" else BAND

    def at(self, ts: float, value: Any) -> None:
        """``value`` from ``ts`` on (at the same instant as the last step: replaces it)."""
        if self.steps and self.steps[-1][0] >= ts:
            self.steps[-1] = (self.steps[-1][0], value)
            if len(self.steps) > 1 and self.steps[-2][1] == value:
                self.steps.pop()
        elif not self.steps or self.steps[-1][1] != value:
            self.steps.append((ts, value))


def lanes(events: Iterable[dict[str, Any]], start: float) -> list[Lane]:
    """State, holder and tracker lanes from events of any number of nodes (sorted by time)."""
    state: dict[tuple[str, str], Lane] = {}
    prio: dict[tuple[str, str], int | None] = {}
    holder: dict[str, Lane] = {}
    masters: dict[str, set[str]] = {}
    trackers: dict[tuple[str, str], Lane] = {}
    for e in sorted(events, key=lambda e: e["ts"]):
        node, ts = e.get("node", "?"), max(e["ts"], start)
        if e["type"] == "transition":
            key = (node, e["instance"])
            lane = state.setdefault(key, Lane("state", f"{node} {e['instance']}",
                                              [(start, ("?", None))]))
            prio[key] = e.get("priority", prio.get(key))
            lane.at(ts, (e["new"], prio[key]))
            held = masters.setdefault(e["instance"], set())
            (held.add if e["new"] == "MASTER" else held.discard)(node)
            hl = holder.setdefault(e["instance"], Lane("holder", f"VIPs {e['instance']}",
                                                       [(start, "")]))
            hl.at(ts, "+".join(sorted(held)))
        elif e["type"] == "priority":
            key = (node, e["instance"])
            prio[key] = e["priority"]
            if key in state:
                state[key].at(ts, (state[key].steps[-1][1][0], e["priority"]))
        elif e["type"] == "tracker":
            lane = trackers.setdefault((node, e["tracker"]), Lane(
                "tracker", f"{node} track {e['tracker']}", [(start, None)]))
            lane.at(ts, bool(e["ok"]))
    return ([state[k] for k in sorted(state)] + [holder[k] for k in sorted(holder)]
            + [trackers[k] for k in sorted(trackers)])


def render(events: list[dict[str, Any]], start: float, end: float, title: str) -> str:
    """The SVG document for ``events`` between ``start`` and ``end`` (Unix times)."""
    rows = lanes([e for e in events if e["ts"] <= end], start)
    nodes = sorted({e.get("node", "?") for e in events})
    colour = {n: NODE_COLOURS[i % len(NODE_COLOURS)] for i, n in enumerate(nodes)}
    span = max(end - start, 1e-3)

    def x(ts: float) -> float:
        return LEFT + (min(max(ts, start), end) - start) / span * (WIDTH - LEFT - RIGHT)

    height = TOP + sum(r.height + GAP for r in rows) + 60
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'font-family="DejaVu Sans, sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
           f'<text x="{LEFT}" y="24" font-size="16" font-weight="bold">{escape(title)}</text>',
           f'<text x="{LEFT}" y="44" fill="#555">{_when(start)} to {_when(end)} '
           f'({span:.1f} s)</text>']
    y = TOP
    for row in rows:
        out.append(f'<text x="{LEFT - 8}" y="{y + row.height / 2 + 4}" '
                   f'text-anchor="end">{escape(row.label)}</text>')
        for (t0, value), (t1, _) in zip(row.steps, [*row.steps[1:], (end, None)],
                                        strict=True):
            fill = _fill(row, value, colour)
            w = max(x(t1) - x(t0), 0.5)
            out.append(f'<rect x="{x(t0):.1f}" y="{y}" width="{w:.1f}" height="{row.height}" '
                       f'fill="{fill}"><title>{escape(row.label)}: '
                       f'{escape(_label(row, value) or _tracker(value))} from {_when(t0)}'
                       '</title></rect>')
            text = _label(row, value)
            if text and w > 8 + 7 * len(text):  # else only the tooltip says it
                out.append(f'<text x="{x(t0) + 4:.1f}" y="{y + row.height / 2 + 4}" '
                           f'fill="white" font-weight="bold">{escape(text)}</text>')
        y += row.height + GAP
    for e in events:
        if e["type"] == "transition" and start <= e["ts"] <= end:
            out.append(f'<line x1="{x(e["ts"]):.1f}" y1="{TOP - 4}" x2="{x(e["ts"]):.1f}" '
                       f'y2="{y}" stroke="#000" stroke-opacity="0.15"/>')
    for i in range(6):  # time axis
        ts = start + span * i / 5
        out.append(f'<line x1="{x(ts):.1f}" y1="{y}" x2="{x(ts):.1f}" y2="{y + 6}" '
                   'stroke="#333"/>')
        out.append(f'<text x="{x(ts):.1f}" y="{y + 20}" text-anchor="middle" '
                   f'fill="#333">{_clock(ts)}</text>')
    legend = [("MASTER", STATE_COLOURS["MASTER"]), ("BACKUP", STATE_COLOURS["BACKUP"]),
              ("FAULT", STATE_COLOURS["FAULT"]), ("tracker OK", TRACK_COLOURS[True]),
              ("tracker failing", TRACK_COLOURS[False])]
    legend += [(f"VIPs on {n}", c) for n, c in colour.items()]
    lx = LEFT
    for text, fill in legend:
        out.append(f'<rect x="{lx}" y="{y + 32}" width="12" height="12" fill="{fill}"/>')
        out.append(f'<text x="{lx + 16}" y="{y + 43}">{escape(text)}</text>')
        lx += 30 + 7 * len(text)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _label(row: Lane, value: Any) -> str:
    """What a stretch says: "MASTER 150", the holder's name, nothing on a tracker band."""
    if row.kind == "state":
        name, prio = value if isinstance(value, tuple) else (value, None)
        return name if prio is None or name == "?" else f"{name} {prio}"
    if row.kind == "holder":
        return str(value) or "nobody"
    return ""


def _tracker(value: bool | None) -> str:
    return {True: "OK", False: "failing", None: "no result yet"}[value]


def _fill(row: Lane, value: Any, colour: dict[str, str]) -> str:
    if row.kind == "tracker":
        return TRACK_COLOURS[value]
    if row.kind == "holder":
        if not value:
            return "#bdbdbd"
        return colour.get(value, "#c62828")  # two names joined: both held them
    name = value[0] if isinstance(value, tuple) else value
    return STATE_COLOURS.get(name, "#e0e0e0")


def _when(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def _clock(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3]
