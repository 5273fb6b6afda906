"""``config-sync`` subcommands (HAProxy configuration sync) shared by ``vrrpd config-sync
keygen`` and ``vrrpctl config-sync ...``."""

from __future__ import annotations

import argparse
import socket
import sys
import time
from pathlib import Path
from typing import Any


def add_keygen(sub: Any) -> None:
    """Add ``keygen --cert PATH [--name NODE]`` to an argparse subparsers object."""
    k = sub.add_parser("keygen", help="create this node's sync key + self-signed certificate "
                                      "and print its fingerprint for the peers")
    k.add_argument("--cert", required=True, type=Path, help="PEM file to create (key + cert)")
    k.add_argument("--name", default=socket.gethostname(), help="node name (default: hostname)")
    k.add_argument("--overwrite", action="store_true", help="replace an existing file")


def keygen(args: argparse.Namespace) -> int:
    """Create the key + certificate; print ``sha256:<hex>``."""
    from vrrpd.configsync.tls import keygen as make

    if args.cert.exists() and not args.overwrite:
        print(f"{args.cert} exists; --overwrite replaces it (the peers' pins must then change)",
              file=sys.stderr)
        return 1
    try:
        print(f"sha256:{make(args.cert, args.name)}")
    except OSError as exc:
        print(f"cannot write {args.cert}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


def keygen_parser() -> argparse.ArgumentParser:
    """``vrrpd config-sync``'s parser (also what man/generate.py documents)."""
    p = argparse.ArgumentParser(prog="vrrpd config-sync",
                                description="HAProxy configuration sync helpers")
    add_keygen(p.add_subparsers(dest="config_sync_cmd", required=True, metavar="COMMAND"))
    return p


def keygen_main(argv: list[str]) -> int:
    """``vrrpd config-sync keygen ...``."""
    return keygen(keygen_parser().parse_args(argv))


def _result(r: dict[str, Any]) -> str:
    return "ok: " + str(r.get("message")) if r.get("ok") else "ERROR: " + str(r.get("error"))


def render_config_sync(cmd: str, doc: dict[str, Any]) -> str:
    """Text for ``config-sync-status`` and ``config-sync-push``."""
    if cmd == "config-sync-push":
        lines = [f"generation {doc['generation']}  manifest {doc['manifest_hash'][:16]}"]
        lines += [f"{peer}: {_result(r)}" for peer, r in doc["peers"].items()]
        return "\n".join(lines)
    local = doc["local"]
    role = "source" if local.get("source") else "receiver"
    lines = [f"local ({role}): generation {local['generation']}  manifest "
             f"{str(local.get('manifest_hash'))[:16]}" +
             ("  DIVERGED: edited here since the last sync" if local.get("diverged") else "") +
             ("  never synced: the first push replaces these files"
              if local.get("never_synced") and role == "receiver" else "")]
    for peer, p in doc["peers"].items():
        if "error" in p:
            lines.append(f"peer {peer}: unreachable: {p['error']}")
        else:
            lines.append(f"peer {peer} ({p.get('node')}): generation {p['generation']}  "
                         f"manifest {str(p.get('manifest_hash'))[:16]}  {p['sync']}" +
                         (" (the next push replaces its files; they are not treated as "
                          "diverged)" if p["sync"] == "never-synced" else ""))
    last = doc.get("last_push")
    if last:
        ago = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["at"]))
        way = "received from" if last.get("received") else "pushed to"
        lines.append(f"last push: {ago} {way} {last['peer']}: {_result(last)}")
    listener = doc.get("listener")
    if listener:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(listener["counters"].items()))
        lines.append(f"listener (peers {', '.join(listener['allowed']) or 'none'}): "
                     f"{counts or 'no connections yet'}; {listener['pending']} authenticating")
    return "\n".join(lines)
