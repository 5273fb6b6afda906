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
from pathlib import Path

from vrrpd.config.schema import Check, absolute_path


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
