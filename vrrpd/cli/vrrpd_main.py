"""``vrrpd``: run the daemon in the foreground, or check a configuration file."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from vrrpd import __version__
from vrrpd.config.loader import ConfigError, load_config
from vrrpd.daemon.logs import setup_logging

DEFAULT_CONFIG = "/etc/vrrpd/vrrpd.yaml"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vrrpd",
        description="VRRP (RFC 3768 / 5798 / 9568) pair manager for HAProxy load balancers. "
                    "Runs in the foreground and logs to stderr; systemd runs it as a service.")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, metavar="FILE",
                   help=f"configuration file (default {DEFAULT_CONFIG})")
    p.add_argument("--check-config", action="store_true",
                   help="validate the configuration and exit: 0 when valid, 1 with the error")
    p.add_argument("--log-level", default="info",
                   choices=["debug", "info", "warning", "error"], help="default: info")
    p.add_argument("--version", action="version", version=f"vrrpd {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sync"]:  # `vrrpd sync keygen --cert PATH`: no config, no daemon
        from vrrpd.cli.sync_cli import keygen_main

        return keygen_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config, check_interfaces=True)
    except ConfigError as exc:
        print(f"vrrpd: configuration refused: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"vrrpd: cannot read {args.config}: {exc.strerror}", file=sys.stderr)
        return 1
    if args.check_config:
        print(f"{args.config}: OK ({len(config.instances)} instance(s))")
        return 0
    setup_logging(config.log_format, getattr(logging, args.log_level.upper()))
    from vrrpd.daemon.runtime import Daemon

    async def run() -> None:
        await Daemon(config).run()

    try:
        asyncio.run(run())
    except OSError as exc:
        logging.getLogger("vrrpd").critical("cannot start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
