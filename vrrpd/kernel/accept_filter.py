"""Accept_Mode False (``accept_mode: false``) with nftables: the master holds the VIPs but
the host accepts nothing addressed to them (RFC 5798 §6.4.3, RFC 3768 §6.4.3).

Everything lives in vrrpd's own table ``inet vrrpd_accept``; no other table is read or
changed.  Per instance, while it holds its VIPs, one base chain on the ``input`` hook
(priority -10, before a filter table's usual 0) drops IPv4/IPv6 packets to the VIPs,
except the Neighbor Solicitations / Advertisements the master must answer (§6.4.3: "MUST
respond to ND Neighbor Solicitation message for the IPv6 address(es)"; ARP is not IP, so
nftables' ``inet`` family never sees it).  The chain is added before the VIPs and deleted
after them, so there is no moment at which the host accepts for a VIP it should not.

On start and on stop the table is deleted (:meth:`AcceptFilter.reset`): chains a crashed run
left are gone; :meth:`AcceptFilter.block` makes it again when needed.  Each change is one
nft script, run as one transaction by libnftables (Debian's libnftables1, which the ``nft``
command is built on) inside the daemon, off the event loop.  In-process because of the unit:
vrrpd clears its ambient capabilities (:mod:`vrrpd.daemon.privileges`), so an ``nft`` child
would run without CAP_NET_ADMIN and be refused; the daemon itself keeps it.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import functools
import os
import threading
from collections.abc import Iterable
from ipaddress import IPv4Interface, IPv6Interface

TABLE = "inet vrrpd_accept"
LIBNFTABLES = "libnftables.so.1"
IPInterface = IPv4Interface | IPv6Interface


class NftError(OSError):
    """nftables refused a change (its message says why)."""


@functools.cache
def _libnftables() -> ctypes.CDLL:
    """libnftables, loaded on first use: only ``accept_mode: false`` needs it."""
    try:
        lib = ctypes.CDLL(LIBNFTABLES)
    except OSError:
        raise OSError(errno.ENOENT, f"{LIBNFTABLES} is missing: apt install nftables") from None
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
    lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
    for get_buffer in (lib.nft_ctx_get_error_buffer, lib.nft_ctx_get_output_buffer):
        get_buffer.restype = ctypes.c_char_p
        get_buffer.argtypes = [ctypes.c_void_p]
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.nft_ctx_set_dry_run.argtypes = [ctypes.c_void_p, ctypes.c_bool]
    return lib


_CONTEXT_LOCK = threading.Lock()  # run_nft runs in asyncio.to_thread's workers


@functools.cache
def _context(netns: int) -> int:
    """The libnftables context of network namespace ``netns`` (its inode; a context's
    netlink socket stays in the namespace it was made in), made on first use and kept, as
    ``nft -i`` and firewalld keep theirs: freeing one takes libnftables some 15 ms, thirty
    times the transaction itself (three tables reset before the first advert, a chain per
    takeover)."""
    lib = _libnftables()
    ctx: int | None = lib.nft_ctx_new(0)  # NFT_CTX_DEFAULT
    if not ctx:
        raise NftError("libnftables could not make a context (out of memory?)")
    lib.nft_ctx_buffer_output(ctx)  # keep nft's output off our stdout
    lib.nft_ctx_buffer_error(ctx)
    return ctx


def run_nft(script: str, dry_run: bool = False) -> None:
    """Run ``script`` (``nft -f`` syntax) as one transaction; blocking (netlink).  ``dry_run``
    (``nft -c``): the kernel checks the transaction and aborts it, so nothing changes."""
    lib = _libnftables()
    with _CONTEXT_LOCK:
        ctx = _context(os.stat("/proc/thread-self/ns/net").st_ino)
        lib.nft_ctx_set_dry_run(ctx, dry_run)
        failed = lib.nft_run_cmd_from_buffer(ctx, script.encode()) != 0
        lib.nft_ctx_get_output_buffer(ctx)  # reading a buffer empties it for the next script
        message = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
    if failed:
        raise NftError(f"nftables refused {script.strip()!r}: {message.strip()}")


def chain_name(prefix: str, instance: str) -> str:
    """``prefix`` + ``instance``, with ``_`` doubled and ``-`` as ``_d`` (nft names take no
    ``-``; the mapping keeps two instance names apart)."""
    return prefix + instance.replace("_", "__").replace("-", "_d")


def chain(instance: str) -> str:
    """``instance``'s chain: ``am_<name>``."""
    return f"{TABLE} {chain_name('am_', instance)}"


def chain_rules(instance: str, vips: Iterable[IPInterface]) -> str:
    """The nft script that adds ``instance``'s chain, dropping what is addressed to ``vips``."""
    name = chain(instance)
    v4 = ", ".join(str(v.ip) for v in vips if v.version == 4)
    v6 = ", ".join(str(v.ip) for v in vips if v.version == 6)
    lines = [f"add table {TABLE}",
             f"add chain {name} {{ type filter hook input priority -10 ; policy accept ; }}",
             f"flush chain {name}"]
    if v4:
        lines.append(f"add rule {name} ip daddr {{ {v4} }} counter drop")
    if v6:
        lines.append(f"add rule {name} ip6 daddr {{ {v6} }} icmpv6 type "
                     "{ nd-neighbor-solicit, nd-neighbor-advert } accept")
        lines.append(f"add rule {name} ip6 daddr {{ {v6} }} counter drop")
    return "\n".join(lines) + "\n"


class NftTable:
    """One nftables table of vrrpd's own (``table``), deleted whole at start and stop."""

    table = TABLE

    async def _nft(self, script: str) -> None:
        await asyncio.to_thread(run_nft, script)

    async def reset(self) -> None:
        """Delete the table, with whatever a crashed run left in it."""
        await self._nft(f"add table {self.table}\ndelete table {self.table}\n")

    async def _delete_chain(self, name: str) -> None:
        """Delete chain ``name`` of the table, if it is there."""
        await self._nft(f"add table {self.table}\nadd chain {self.table} {name}\n"
                        f"delete chain {self.table} {name}\n")


class AcceptFilter(NftTable):
    """vrrpd's nftables table for ``accept_mode: false`` instances."""

    async def block(self, instance: str, vips: Iterable[IPInterface]) -> None:
        await self._nft(chain_rules(instance, vips))

    async def unblock(self, instance: str) -> None:
        await self._delete_chain(chain_name("am_", instance))
