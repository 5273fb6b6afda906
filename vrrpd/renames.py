"""Old spellings that still work: the one home of each rename and of its deprecation warning.

HAProxy configuration sync was once spelt plain ``sync``, beside VRRP ``sync_groups`` (RFC-less
keepalived ``vrrp_sync_group``), which it has nothing to do with.  It is now ``config_sync:`` in
the YAML and ``config-sync`` on the command line; the old spelling still works, with a warning
that says what to write instead.  Remove an entry here (and its caller's alias) to drop it.
"""

from __future__ import annotations

import logging

RENAMED = {
    "sync:": "config_sync:",  # top-level YAML key (vrrpd.config.loader)
    "vrrpctl sync": "vrrpctl config-sync",  # vrrpd.cli.vrrpctl
    "vrrpd sync": "vrrpd config-sync",  # vrrpd.cli.vrrpd_main
}

log = logging.getLogger("vrrpd.deprecated")


def deprecated(old: str, where: str = "") -> None:
    """Warn once per use that ``old`` is deprecated, naming its replacement."""
    at = f"{where}: " if where else ""
    log.warning("%s`%s` is deprecated (HAProxy configuration sync, not VRRP sync groups); "
                "write `%s` instead, the old spelling will be removed", at, old, RENAMED[old])
