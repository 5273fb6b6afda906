"""``vrrpctl``: the operator's tool.  Talks JSON to the daemon's control socket.

Exit codes: 0 success; for ``status`` and ``check`` the monitoring-plugin codes of
:mod:`vrrpd.control.health` (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN = daemon unreachable);
1 when the daemon refuses a command or cannot be reached (other commands).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from vrrpd import __version__
from vrrpd.cli import timeline
from vrrpd.cli.configsync_cli import add_keygen, keygen
from vrrpd.cli.render import render, render_event
from vrrpd.control import commands as _commands  # noqa: F401  (registers the commands)
from vrrpd.control import configsync_commands as _configsync_commands  # noqa: F401
from vrrpd.control.client import DEFAULT_SOCKET, TIMEOUT, ControlError, follow, request
from vrrpd.control.health import UNKNOWN, unreachable
from vrrpd.control.registry import COMMANDS, Command
from vrrpd.renames import deprecated

MONITORING = ("status", "check")  # commands whose exit code is the health verdict
CLIENT_ONLY = ("plot", "also")  # events --plot: drawn here, not sent to the daemon
CONFIG_SYNC = "config-sync-"  # the daemon's config-sync-status|push: `vrrpctl config-sync X`


def build_parser() -> argparse.ArgumentParser:
    """The subcommands, their arguments and help come from the daemon's command registry
    (:mod:`vrrpd.control.registry`); ``config-sync keygen`` runs here, without a daemon."""
    p = argparse.ArgumentParser(prog="vrrpctl", description="Control a running vrrpd.")
    p.add_argument("--version", action="version", version=f"vrrpctl {__version__}")
    _global_options(p, default_json=False, default_socket=DEFAULT_SOCKET)
    # The same options after the command (`vrrpctl status --json`); SUPPRESS keeps what was
    # given before it when they are not repeated.
    after = argparse.ArgumentParser(add_help=False)
    _global_options(after, default_json=argparse.SUPPRESS, default_socket=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    for cmd in COMMANDS.values():
        if not cmd.name.startswith(CONFIG_SYNC):
            _arguments(sub.add_parser(cmd.name, help=cmd.summary, parents=[after]), cmd)
    config_sync = sub.add_parser(
        "config-sync", help="HAProxy configuration sync between the peers (not VRRP sync "
        "groups): status, push, keygen").add_subparsers(
        dest="config_sync_cmd", required=True, metavar="CONFIG_SYNC_COMMAND")
    for cmd in COMMANDS.values():
        if cmd.name.startswith(CONFIG_SYNC):
            _arguments(config_sync.add_parser(cmd.name.removeprefix(CONFIG_SYNC),
                                              help=cmd.summary, parents=[after]), cmd)
    add_keygen(config_sync)
    return p


def _global_options(parser: argparse.ArgumentParser, default_json: object,
                    default_socket: object) -> None:
    parser.add_argument("--socket", default=default_socket, help=f"default {DEFAULT_SOCKET}")
    parser.add_argument("--json", action="store_true", default=default_json,
                        help="print the daemon's JSON answer")


def _arguments(parser: argparse.ArgumentParser, cmd: Command) -> None:
    for arg in cmd.args:
        parser.add_argument(*arg.flags, help=arg.help, **arg.options)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_renamed(sys.argv[1:] if argv is None else argv))
    if args.cmd == "config-sync":
        if args.config_sync_cmd == "keygen":
            return keygen(args)
        args.cmd = f"{CONFIG_SYNC}{args.config_sync_cmd}"
    fields = {k: v for k, v in vars(args).items()
              if k not in ("socket", "json", "cmd", "config_sync_cmd", *CLIENT_ONLY)
              and v not in (None, False)}
    show = json.dumps if args.json else render_event
    try:
        if args.cmd == "events" and args.plot:
            return plot(args)
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
        result = request(args.socket, args.cmd, fields,
                         timeout=TIMEOUT + COMMANDS[args.cmd].waits)
    except ControlError as exc:
        return _failed(args, str(exc))
    except BrokenPipeError:  # `vrrpctl events | head`: the reader has what it wanted
        # Python flushes stdout again at exit: point it at /dev/null so that stays quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
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


def _renamed(argv: list[str]) -> list[str]:
    """``vrrpctl [options] sync ...``, the old spelling of ``config-sync`` (vrrpd.renames)."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] == "--socket" else 1
    if argv[i:i + 1] != ["sync"]:
        return argv
    deprecated("vrrpctl sync")
    return [*argv[:i], "config-sync", *argv[i + 1:]]


def plot(args: argparse.Namespace) -> int:
    """``events --plot FILE``: this node's history (all of it: the state before the window
    counts) plus ``--also`` files, drawn from ``--since`` ago (default: the first event)."""
    events = [{**e, "node": e.get("node") or "?"}
              for e in request(args.socket, "events", {})["events"]]
    for path in args.also:
        try:
            with open(path, encoding="utf-8") as f:
                events += [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError) as exc:
            print(f"vrrpctl: --also {path}: {exc}", file=sys.stderr)
            return 1
    if not events:
        print("vrrpctl: no events to plot", file=sys.stderr)
        return 1
    end = time.time()
    start = end - args.since if args.since else min(e["ts"] for e in events)
    nodes = sorted({str(e.get("node")) for e in events})
    svg = timeline.render(events, start, end, f"vrrpd: {' and '.join(nodes)}")
    try:
        with open(args.plot, "w", encoding="utf-8") as f:
            f.write(svg)
    except OSError as exc:
        print(f"vrrpctl: cannot write {args.plot}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {args.plot}: {len(events)} events of {', '.join(nodes)}")
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
