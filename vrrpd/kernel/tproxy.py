"""Transparent proxying through the gateway VIP: the nftables half (``tproxy:`` of an instance).

With ``source 0.0.0.0 usesrc clientip`` HAProxy connects to a real server *from the client's
address* (an ``IP_TRANSPARENT`` socket).  The server answers that address through its default
gateway, the gateway VIP on the master; the master must then hand those packets to HAProxy's
socket instead of routing them on to the client, whose own stack never opened that
connection.  Two pieces do it while the instance is master:

* here, in vrrpd's own table ``inet vrrpd_tproxy``, one chain per instance (``tp_<name>``) on
  the ``prerouting`` hook at ``mangle`` priority (-150, before the routing decision)::

      meta nfproto ipv4 meta l4proto tcp socket transparent 1 meta mark set 0x7470 accept

  -- a packet that belongs to a local transparent socket gets the mark; nothing else does
  (not forwarded traffic, not connections to this host's own addresses);
* in :mod:`vrrpd.kernel.routes`, with protocol 112 like every route and rule vrrpd adds
  (:meth:`~vrrpd.config.model.TproxyConfig.routes` / ``rules``)::

      ip rule add fwmark 0x7470 lookup 7470 priority 7470
      ip route add local 0.0.0.0/0 dev lo table 7470

  -- marked packets are delivered locally, to the socket the mark was set for.

In vrrpd and not in a notify hook, because the pieces must follow mastership exactly and
must not outlive vrrpd: hooks run after the transition without the daemon's capabilities
(:mod:`vrrpd.daemon.privileges`) and never after a SIGKILL, whereas here the chain is added
with the VIPs, removed with them, and the table is deleted at every start and stop
(:meth:`NftTable.reset`) just as the routes and rules with protocol 112 are flushed at start:
a crashed run leaves nothing that survives the next start.
"""

from __future__ import annotations

from vrrpd.kernel.accept_filter import NftError, NftTable, chain_name, run_nft

TABLE = "inet vrrpd_tproxy"
_NFPROTO = {4: "ipv4", 6: "ipv6"}


def chain_rules(instance: str, family: int, fwmark: int) -> str:
    """The nft script that adds ``instance``'s chain, marking the ``family`` packets of
    local transparent sockets with ``fwmark``."""
    name = f"{TABLE} {chain_name('tp_', instance)}"
    return "\n".join([
        f"add table {TABLE}",
        f"add chain {name} {{ type filter hook prerouting priority mangle ; policy accept ; }}",
        f"flush chain {name}",
        f"add rule {name} meta nfproto {_NFPROTO[family]} meta l4proto tcp "
        f"socket transparent 1 meta mark set {fwmark:#x} counter accept"]) + "\n"


def problem(family: int) -> str | None:
    """Why this host cannot run the chain (libnftables missing, the kernel without the
    ``socket`` expression or policy routing), or None.  A dry run: the kernel checks the
    transaction and aborts it.  Needs CAP_NET_ADMIN, as the daemon has."""
    try:
        run_nft(chain_rules("probe", family, 1), dry_run=True)
    except NftError as exc:
        return (f"the kernel refused the nftables `socket` rule transparent proxying needs "
                f"({exc}); it needs nf_tables with nft_socket (CONFIG_NFT_SOCKET: `modprobe "
                "nft_socket`, and list it in /etc/modules-load.d/)")
    except OSError as exc:  # libnftables missing
        return str(exc)
    return None


class TransparentProxy(NftTable):
    """vrrpd's nftables table for ``tproxy:`` instances."""

    table = TABLE

    async def mark(self, instance: str, family: int, fwmark: int) -> None:
        await self._nft(chain_rules(instance, family, fwmark))

    async def unmark(self, instance: str) -> None:
        await self._delete_chain(chain_name("tp_", instance))
