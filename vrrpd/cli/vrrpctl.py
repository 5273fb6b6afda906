"""``vrrpctl``: the operator's tool.  Talks JSON to the daemon's control socket.

Exit codes: 0 success; for ``status`` and ``check`` the monitoring-plugin codes of
:mod:`vrrpd.control.health` (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN = daemon unreachable);
1 when the daemon refuses a command or cannot be reached (other commands).
"""

from __future__ import annotations

import argparse
import json
import re
import sys

from vrrpd import __version__
from vrrpd.cli.render import render, render_event
from vrrpd.cli.sync_cli import add_keygen, keygen
from vrrpd.control.client import DEFAULT_SOCKET, ControlError, follow, request
from vrrpd.control.health import UNKNOWN, unreachable

DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MONITORING = ("status", "check")  # commands whose exit code is the health verdict


def duration(text: str) -> float:
    """``"10m"`` -> 600.0 (s, m, h, d; a bare number is seconds)."""
    m = DURATION.fullmatch(text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 10m, 2h, 1d")
    return float(m[1]) * UNITS[m[2]]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vrrpctl", description="Control a running vrrpd.")
    p.add_argument("--socket", default=DEFAULT_SOCKET, help=f"default {DEFAULT_SOCKET}")
    p.add_argument("--json", action="store_true", help="print the daemon's JSON answer")
    p.add_argument("--version", action="version", version=f"vrrpctl {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    s = sub.add_parser("status", help="state of every instance; exits 0 OK, 1 WARNING, "
                                      "2 CRITICAL, 3 UNKNOWN")
    s.add_argument("instance", nargs="?")
    sub.add_parser("check", help="one line for Nagios/Icinga: VRRPD OK|WARNING|CRITICAL|"
                                 "UNKNOWN - ... (exit 0/1/2/3)")
    for name, text in (("demote", "hand over to the peer and stay BACKUP until resume"),
                       ("promote", "take mastership now until resume"),
                       ("resume", "back to configured behaviour")):
        s = sub.add_parser(name, help=text)
        s.add_argument("instance", nargs="?")
        s.add_argument("--all", action="store_true", help="every instance")
        if name == "demote":
            s.add_argument("--force", action="store_true",
                           help="stay demoted even if no peer takes over")
    s = sub.add_parser("maintenance", help="on: hand over, never master; off: resume")
    s.add_argument("state", choices=["on", "off"])
    s.add_argument("--force", action="store_true", help="even if no peer takes over")
    sub.add_parser("reload", help="re-read the configuration (hitless)")
    s = sub.add_parser("events", help="transition, tracker and link history")
    s.add_argument("--since", type=duration, metavar="AGE",
                   help="only events of the last AGE (90s, 10m, 2h, 1d)")
    s.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    s = sub.add_parser("sync", help="HAProxy configuration sync: status, push, keygen")
    sync = s.add_subparsers(dest="sync_cmd", required=True, metavar="SYNC_COMMAND")
    sync.add_parser("status", help="generations and manifests here and on the peers")
    s = sync.add_parser("push", help="push the listed files to the peers now")
    s.add_argument("--force", action="store_true",
                   help="also over a diverged peer or one with a newer generation")
    add_keygen(sync)
    sub.add_parser("version", help="daemon version")
    sub.add_parser("help", help="commands the daemon knows")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cmd == "sync":
        if args.sync_cmd == "keygen":
            return keygen(args)
        args.cmd = f"sync-{args.sync_cmd}"
    fields = {k: v for k, v in vars(args).items()
              if k not in ("socket", "json", "cmd", "sync_cmd") and v not in (None, False)}
    show = json.dumps if args.json else render_event
    try:
        if args.cmd == "events":
            if args.follow:
                result, more = follow(args.socket, "events", fields)
            else:
                result, more = request(args.socket, "events", fields), iter(())
            for event in result["events"]:
                print(show(event), flush=True)
            for event in more:
                print(show(event), flush=True)
            return 0
        result = request(args.socket, args.cmd, fields)
    except ControlError as exc:
        return _failed(args, str(exc))
    except (TimeoutError, OSError) as exc:
        return _failed(args, f"talking to {args.socket} failed: {exc}")
    except KeyboardInterrupt:
        return 130
    print(json.dumps(result, indent=2) if args.json else render(args.cmd, result))
    if args.cmd == "status":
        return int(result["health"]["code"])
    if args.cmd == "check":
        return int(result["code"])
    return 0


def _failed(args: argparse.Namespace, message: str) -> int:
    """Refused or unreachable: 1, or UNKNOWN (3) for the monitoring commands."""
    if args.cmd == "check":
        verdict = unreachable(message)
        print(json.dumps(verdict) if args.json else render("check", verdict))
        return UNKNOWN
    print(f"vrrpctl: {message}", file=sys.stderr)
    return UNKNOWN if args.cmd in MONITORING else 1


if __name__ == "__main__":
    sys.exit(main())
