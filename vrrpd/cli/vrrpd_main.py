"""``vrrpd``: run the daemon in the foreground, or check a configuration file."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from ipaddress import ip_address
from pathlib import Path

from vrrpd import __version__
from vrrpd.config.host import tproxy_warnings
from vrrpd.config.loader import ConfigError, load_config
from vrrpd.config.model import Config
from vrrpd.daemon.logs import setup_logging
from vrrpd.renames import deprecated

DEFAULT_CONFIG = "/etc/vrrpd/vrrpd.yaml"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vrrpd",
        description="VRRP (RFC 3768 / 5798 / 9568) pair manager for HAProxy load balancers. "
                    "Runs in the foreground and logs to stderr; systemd runs it as a service.")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, metavar="FILE",
                   help=f"configuration file (default {DEFAULT_CONFIG})")
    p.add_argument("--check-config", action="store_true",
                   help="validate the configuration as the daemon's start does and exit: 0 "
                        "when valid (warnings name instances that would start in FAULT), "
                        "1 with file:line: key: reason")
    p.add_argument("--no-host-checks", action="store_true",
                   help="with --check-config: check the file alone, for another machine (the "
                        "peer's file, CI): skip interfaces, users and groups, hook files and "
                        "the sync certificate")
    p.add_argument("--log-level", default="info",
                   choices=["debug", "info", "warning", "error"], help="default: info")
    p.add_argument("--version", action="version", version=f"vrrpd {__version__}")
    return p


def interface_warnings(config: Config) -> list[str]:
    """Instances that would start in FAULT now, and interface trackers that would fail."""
    from vrrpd.kernel.link import exists, readiness

    warnings = []
    for i, cfg in enumerate(config.instances):
        problem = readiness(cfg.interface, cfg.family,
                            config.not_sources(cfg.interface, cfg.family)).problem
        if problem:
            warnings.append(f"instances[{i}].interface: {problem}: instance {cfg.name} would "
                            "wait in FAULT until it is usable")
    for name, track in config.tracks.items():
        ifname = getattr(track.options, "interface", None)
        if isinstance(ifname, str) and not exists(ifname):
            warnings.append(f"tracks.{name}.interface: interface {ifname} does not exist: the "
                            "tracker fails until it appears")
    return warnings


HAPROXY_CFG = Path("/etc/haproxy/haproxy.cfg")


def accept_mode_warnings(config: Config) -> list[str]:
    """HAProxy ``bind`` lines on a VIP of an ``accept_mode: false`` instance: the master would
    drop every connection to it.  The file is the first of ``config_sync.files``, else
    /etc/haproxy/haproxy.cfg when it exists."""
    from vrrpd.configsync.apply import parse_binds
    from vrrpd.proto.numbers import OWNER_PRIORITY

    refused = {v.ip: (i, cfg.name) for i, cfg in enumerate(config.instances)
               if not cfg.accept_mode and cfg.priority != OWNER_PRIORITY for v in cfg.held}
    path = config.config_sync.files[0] if config.config_sync is not None else HAPROXY_CFG
    if not refused or not path.exists():
        return []
    warnings = []
    for bind in parse_binds(path.read_text(errors="replace")):
        with contextlib.suppress(ValueError):
            hit = refused.get(ip_address(bind.address))
            if hit is not None:
                warnings.append(f"instances[{hit[0]}].accept_mode: {path}:{bind.line} binds "
                                f"{bind.address}, a VIP of {hit[1]}, which has accept_mode: "
                                "false: the master drops every connection to it (RFC 5798 "
                                "§6.4.3); set accept_mode: true for VIPs HAProxy serves on")
    return warnings


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["config-sync"], ["sync"]):  # `vrrpd config-sync keygen --cert PATH`:
        from vrrpd.cli.configsync_cli import keygen_main  # no config, no daemon

        if argv[0] == "sync":
            deprecated("vrrpd sync")

        return keygen_main(argv[1:])
    if argv[:1] == ["import-keepalived"]:  # a converter: no config, no daemon
        from vrrpd.cli.import_keepalived import main as import_main

        return import_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.no_host_checks and not args.check_config:
        parser.error("--no-host-checks only goes with --check-config: the daemon always "
                     "checks its host")
    try:
        config = load_config(args.config, host=not args.no_host_checks)
    except ConfigError as exc:
        print(f"vrrpd: configuration refused: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"vrrpd: cannot read {args.config}: {exc.strerror}", file=sys.stderr)
        return 1
    if args.check_config:
        warnings = ([] if args.no_host_checks
                    else interface_warnings(config) + accept_mode_warnings(config)
                    + tproxy_warnings(config.instances))
        for warning in warnings:
            print(f"{args.config}: warning: {warning}")
        if config.bgp is not None and not args.no_host_checks:
            from vrrpd.kernel.bgp import SpeakerError, build_speaker, probe

            try:
                print(f"{args.config}: BGP speaker "
                      + asyncio.run(probe(build_speaker(config.bgp.engine, config.bgp.socket))))
            except SpeakerError as exc:
                print(f"vrrpd: anycast groups cannot be announced: {exc}", file=sys.stderr)
                return 1
        scope = " (host checks skipped)" if args.no_host_checks else ""
        groups = f", {len(config.anycast)} anycast group(s)" if config.anycast else ""
        print(f"{args.config}: OK ({len(config.instances)} instance(s){groups}){scope}")
        return 0
    setup_logging(config.log_format, getattr(logging, args.log_level.upper()))
    from vrrpd.daemon import privileges, scheduling
    from vrrpd.daemon.runtime import Daemon

    log = logging.getLogger("vrrpd")
    try:  # hooks, script trackers and sync commands start without the daemon's capabilities
        privileges.drop_ambient_capabilities()
    except OSError as exc:
        log.critical("cannot start: %s", exc)
        return 1
    log.info("running as %s", privileges.describe())
    if config.realtime_priority:
        try:  # before the loop and its executor exist: their threads are normally scheduled
            scheduling.use_realtime(config.realtime_priority)
            log.info("event loop scheduled %s", scheduling.describe())
        except OSError as exc:
            log.warning("%s", exc.strerror)
    refusal = config.config_sync and privileges.config_sync_refusal(config.config_sync.files)
    if refusal:
        log.critical("cannot start: %s", refusal)
        return 1

    async def run() -> None:
        await Daemon(config).run()

    try:
        asyncio.run(run())
    except OSError as exc:
        log.critical("cannot start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
