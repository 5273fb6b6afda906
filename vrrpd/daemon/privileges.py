"""The daemon's capabilities stay the daemon's: the programs it starts get none of them.

``vrrpd.service`` runs vrrpd as the user ``vrrpd`` with a few capabilities granted through
systemd's ``AmbientCapabilities=`` (capabilities(7), "Ambient capability set").  Ambient
capabilities survive ``execve``, so every notify hook, script tracker and sync command would
inherit CAP_NET_ADMIN and CAP_NET_RAW, even a script tracker switched to ``user: nobody``.
Clearing the ambient set once at start keeps the capabilities in the daemon's permitted and
effective sets (it still changes addresses and sends raw frames) while its children start with
none.  Run as root (the lab, or a drop-in with ``User=root``), this changes nothing.
"""

from __future__ import annotations

import ctypes
import os
import pwd
from pathlib import Path

PR_CAP_AMBIENT = 47  # <linux/prctl.h>
PR_CAP_AMBIENT_CLEAR_ALL = 4

# capabilities(7), by bit number (<linux/capability.h>).
CAPABILITIES = (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
    "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
    "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
    "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
    "lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
    "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore")


def drop_ambient_capabilities() -> None:
    """Empty the ambient set (prctl(2) PR_CAP_AMBIENT_CLEAR_ALL); raise OSError on failure."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"cannot clear the ambient capabilities: {os.strerror(errno)}")


def capability_set(name: str = "CapEff", status: str = "/proc/self/status") -> list[str]:
    """The capabilities in ``name`` (CapEff, CapPrm, CapAmb, ...) of /proc/self/status."""
    with open(status) as f:
        mask = next(int(line.split()[1], 16) for line in f if line.startswith(f"{name}:"))
    return [f"cap_{cap}" for bit, cap in enumerate(CAPABILITIES) if mask >> bit & 1]


def describe() -> str:
    """``user vrrpd (uid 101) with cap_net_admin, cap_net_raw`` for the start-up log line."""
    uid = os.geteuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    caps = capability_set()
    listed = ", ".join(caps) if len(caps) < 16 else f"{len(caps)} capabilities"
    return f"user {user} (uid {uid}) with {listed or 'no capabilities'}"


def config_sync_refusal(files: tuple[Path, ...]) -> str | None:
    """Why config sync cannot work with this process's rights, or None when it can.

    Sync stages next to each file and renames it into place, so it needs to write each file's
    directory; the shipped unit runs vrrpd as an unprivileged user that cannot.
    """
    blocked = sorted({str(f.parent) for f in files if not os.access(f.parent, os.W_OK)})
    if not blocked:
        return None
    return (f"config sync: {', '.join(blocked)} not writable as {describe()}: config sync writes "
            "there and reloads HAProxy, which needs root; install the drop-in of README.md, "
            "\"The systemd unit and its sandbox\" "
            "(/usr/share/doc/vrrpd/examples/vrrpd.service.d/config-sync.conf)")
