"""``vrrpctl``: the operator's tool.  Talks JSON to the daemon's control socket."""

from __future__ import annotations

import argparse
import json
import sys

from vrrpd.cli.render import render
from vrrpd.cli.sync_cli import add_keygen, keygen
from vrrpd.control.client import DEFAULT_SOCKET, ControlError, follow, request


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vrrpctl", description="Control a running vrrpd.")
    p.add_argument("--socket", default=DEFAULT_SOCKET, help=f"default {DEFAULT_SOCKET}")
    p.add_argument("--json", action="store_true", help="print the daemon's JSON answer")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    s = sub.add_parser("status", help="state of every instance")
    s.add_argument("instance", nargs="?")
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
    s = sub.add_parser("events", help="transition and tracker history (JSON lines)")
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
    try:
        if args.cmd == "events":
            if args.follow:
                result, more = follow(args.socket, "events", fields)
            else:
                result, more = request(args.socket, "events", fields), iter(())
            for event in result["events"]:
                print(json.dumps(event), flush=True)
            for event in more:
                print(json.dumps(event), flush=True)
            return 0
        result = request(args.socket, args.cmd, fields)
    except ControlError as exc:
        print(f"vrrpctl: {exc}", file=sys.stderr)
        return 1
    except (TimeoutError, OSError) as exc:
        print(f"vrrpctl: talking to {args.socket} failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(json.dumps(result, indent=2) if args.json else render(args.cmd, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
