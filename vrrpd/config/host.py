"""Checks of a configuration against the host it will run on.

The loader (:mod:`vrrpd.config.loader`) applies these to the values they concern when
``host=True``, so a failure carries file, line and key like any other mistake.  They cover
what would otherwise make the daemon fail *after* the file was accepted: a sync certificate
it cannot load, a user or group that does not exist, a notify hook it cannot run.  Both
``vrrpd --check-config`` and the daemon's start (and reload) load the file the same way, so a
file the check accepts does not fail on them at start.

Interfaces are deliberately not checked here: an interface that is missing, down or without
its address only keeps its instances in FAULT until it is usable
(:func:`vrrpd.kernel.link.readiness`, reported as warnings by ``--check-config``).

``vrrpd --check-config --no-host-checks`` skips these, to check a file written for another
machine (the peer's file, or CI).  Permissions are those of whoever runs the check: run it as
the user the daemon runs as.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from vrrpd.config.schema import Check, absolute_path

if TYPE_CHECKING:
    from vrrpd.config.model import InstanceConfig


def virtual_mac(interface: str, family: int, vrid: int) -> Check:
    """``virtual_mac: true`` where the interface cannot host the instance's macvlan link, or
    its name is taken by a link vrrpd did not create (:func:`vrrpd.kernel.vmac.problem`).  An
    interface that does not exist yet is not refused: its instance waits in FAULT."""
    def check(wanted: bool) -> bool:
        if wanted:
            from vrrpd.kernel.vmac import problem

            why = problem(interface, family, vrid)
            if why is not None:
                raise ValueError(why)
        return wanted
    return check


def user(name: str) -> str:
    """A user that exists here (script trackers run as it)."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise ValueError(f"no user {name!r} on this host (`getent passwd {name}`); create it "
                         "or name an existing one") from None
    return name


def group(name: str) -> str:
    """A group that exists here (``control_socket_group``)."""
    try:
        grp.getgrnam(name)
    except KeyError:
        raise ValueError(f"no group {name!r} on this host (`getent group {name}`); create it "
                         f"with `groupadd {name}` or name an existing one") from None
    return name


def executable(path: str) -> Path:
    """An absolute path to a regular file this user may execute (notify hooks)."""
    p = absolute_path(path)
    try:
        mode = p.stat().st_mode
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path} is not a regular file")
    if not os.access(p, os.X_OK):
        raise ValueError(f"{path} is not executable (`chmod +x {path}`)")
    return p


def config_sync_identity(value: str) -> Path:
    """The sync certificate and key load exactly as the sync service will load them."""
    from vrrpd.configsync.tls import (  # cryptography: only when sync is configured
        Identity,
        PinError,
    )

    path = absolute_path(value)
    if not path.exists():
        raise ValueError(f"{path} does not exist; create it with `vrrpd config-sync keygen --cert "
                         f"{path} --name NODE` and pin the fingerprint it prints on the peer")
    try:
        Identity(path)
    except PinError as exc:
        raise ValueError(str(exc)) from None
    return path


def tproxy(family: int) -> None:
    """``tproxy:``: this kernel runs the nftables ``socket`` rule and policy routing of
    :mod:`vrrpd.kernel.tproxy` (a dry run, which needs CAP_NET_ADMIN like the daemon)."""
    from vrrpd.daemon.privileges import capability_set
    from vrrpd.kernel.tproxy import problem

    if "cap_net_admin" not in capability_set():
        raise ValueError("cannot ask the kernel whether it has the nftables `socket` "
                         "expression without CAP_NET_ADMIN: run `vrrpd --check-config` as "
                         "root (the unit's ExecStartPre has it), or add --no-host-checks")
    why = problem(family)
    if why is not None:
        raise ValueError(why)


def tproxy_warnings(instances: Iterable[InstanceConfig], sysctl: Path = Path("/proc/sys")
                    ) -> list[str]:
    """What ``--check-config`` warns about a ``tproxy:`` instance on this host: forwarding
    off.  Transparent proxying itself does not need it (the replies are delivered locally),
    but the servers route *everything* through the gateway VIP, so their own connections
    (a PACS sending C-MOVE results or C-STORE to a modality) need the master to forward."""
    warnings = []
    for i, inst in enumerate(instances):
        if inst.tproxy is None:
            continue
        key = ("net/ipv4/ip_forward" if inst.family == 4
               else "net/ipv6/conf/all/forwarding")
        try:
            on = (sysctl / key).read_text().strip() == "1"
        except OSError:
            continue
        if not on:
            warnings.append(
                f"instances[{i}].tproxy: {key.replace('/', '.')} is 0: {inst.name}'s VIP is "
                "the servers' default gateway, and without forwarding their own connections "
                "to other networks (a PACS's C-STORE to a modality) are dropped; set it to 1 "
                "in /etc/sysctl.d/ unless the servers need nothing but replies")
    return warnings
