"""Control commands of the HAProxy configuration sync (``vrrpctl config-sync status|push``)."""

from __future__ import annotations

from typing import Any

from vrrpd.control.registry import Arg, CommandError, command


def _service(daemon: Any) -> Any:
    if daemon.config_sync is None:
        raise CommandError("configuration sync is not configured (no `config_sync:` section)")
    return daemon.config_sync


@command("config-sync-status", "config sync: local and peer generation, manifest, in-sync/behind/"
         "diverged, last push")
async def config_sync_status(daemon: Any, args: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = await _service(daemon).status()
    return result


@command("config-sync-push", "push the listed HAProxy files to the peers now",
         Arg(("--force",), "also over a diverged peer or one with a newer generation",
             {"action": "store_true"}))
async def config_sync_push(daemon: Any, args: dict[str, Any]) -> dict[str, Any]:
    service = _service(daemon)
    if not service.is_source() and not args.get("force"):
        raise CommandError(f"this node is not MASTER of {service.config.instance}, so it is "
                           "not the sync source; --force pushes from here anyway")
    result: dict[str, Any] = await service.push(force=bool(args.get("force")))
    failed = {p: r.get("error") for p, r in result["peers"].items() if not r.get("ok")}
    if failed:
        raise CommandError("push failed: " + "; ".join(f"{p}: {e}" for p, e in failed.items()))
    return result
