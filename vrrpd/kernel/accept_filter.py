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
left are gone; :meth:`AcceptFilter.block` makes it again when needed.  ``nft`` is run as
``nft -f -`` with the whole change in one transaction.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterable
from ipaddress import IPv4Interface, IPv6Interface

TABLE = "inet vrrpd_accept"
NFT = shutil.which("nft") or "/usr/sbin/nft"
IPInterface = IPv4Interface | IPv6Interface


class NftError(OSError):
    """``nft`` refused a change (its message says why)."""


def chain(instance: str) -> str:
    """``instance``'s chain: ``am_<name>``, with ``_`` doubled and ``-`` as ``_d`` (nft names
    take no ``-``; the mapping keeps two instance names apart)."""
    return f"{TABLE} am_{instance.replace('_', '__').replace('-', '_d')}"


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


class AcceptFilter:
    """vrrpd's nftables table for ``accept_mode: false`` instances."""

    async def _nft(self, script: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            NFT, "-f", "-", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate(script.encode())
        if proc.returncode:
            raise NftError(f"nft refused {script.strip()!r}: {err.decode().strip()}")

    async def reset(self) -> None:
        """Delete the table, with whatever a crashed run left in it."""
        await self._nft(f"add table {TABLE}\ndelete table {TABLE}\n")

    async def block(self, instance: str, vips: Iterable[IPInterface]) -> None:
        await self._nft(chain_rules(instance, vips))

    async def unblock(self, instance: str) -> None:
        await self._nft(f"add chain {chain(instance)}\ndelete chain {chain(instance)}\n")
