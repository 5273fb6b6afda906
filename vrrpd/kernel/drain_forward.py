"""The new master's half of a draining hand-over (issue 20): packets of TCP flows this host
does not know go on to the draining peer, which still holds their sockets.

While a peer drains, per instance:

* **nftables**, in vrrpd's own table ``inet vrrpd_drain`` (nothing else is read or changed;
  run in-process through libnftables, :func:`vrrpd.kernel.accept_filter.run_nft`): on the
  ``prerouting`` hook after conntrack (priority mangle), a TCP packet to a VIP that opens no
  connection (ACK without SYN) and belongs to no conntrack entry (``ct state new``) marks its
  entry (``ct mark``), and every packet of a marked entry gets the firewall mark
  :data:`FWMARK` (later packets of that flow are ``established`` here: the ct mark keeps them
  going).  SYNs are never marked: new connections always land on this host.  Conntrack takes
  up a flow seen mid-stream with liberal window tracking, so one direction is enough.
* **policy routing** (pyroute2, protocol :data:`~vrrpd.kernel.routes.RTPROT_VRRPD` like
  the virtual routes): ``fwmark FWMARK lookup DRAIN_TABLE`` at priority
  :data:`FWMARK_RULE_PRIORITY`, and in :data:`DRAIN_TABLE` one route per VIP via the draining
  peer's real address.  The VIPs are local here, and the ``local`` rule (priority 0) would
  deliver them first: it is moved below the fwmark rule (a copy at
  :data:`LOCAL_RULE_PRIORITY`, then the priority-0 one deleted) and put back afterwards.
* **forwarding** on the interface the VIP traffic arrives on (IPv4
  ``net.ipv4.conf.IF.forwarding``; IPv6 ``force_forwarding`` on Linux 6.17+, else
  ``net.ipv6.conf.all.forwarding``), and only marked packets may be forwarded from it (a
  ``forward`` chain drops the rest), so the host does not become a router.  ICMP redirects
  are dropped on ``output``: the packet leaves by the interface it came in on, and a redirect
  would send the client to the draining peer directly, around the VIP.  That is
  ``send_redirects`` off for exactly the drain, without a global sysctl.
* ``net.ipv4.tcp_early_demux=0`` (:data:`EARLY_DEMUX`) while any instance forwards.
* **stale conntrack entries forgotten** (:mod:`vrrpd.kernel.conntrack`; the sockets from
  pyroute2's sock_diag), once, before the VIPs come here: every entry of a TCP flow to a VIP
  that no socket of this host serves (a connection this host closed while it was master
  before, in TIME_WAIT for up to 120 s, or one cut by a failover, ESTABLISHED for days).
  Clients reuse source ports within minutes, so an old flow now on the draining peer may
  have the 4-tuple of such an entry: its packets would then not be ``ct state new``, stay
  here and meet a TIME_WAIT socket or none (a stalled transfer or a reset at the
  hand-over).  :func:`unknown_flows` is the rule.

:meth:`DrainForwarding.reset` undoes all of it (start, stop, and after a crash: the sysctls'
previous values are kept in ``state_file`` until they are restored).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from pyroute2.netlink.diag import DiagSocket
from pyroute2.netlink.exceptions import NetlinkError

from vrrpd.kernel import conntrack, link
from vrrpd.kernel.accept_filter import IPInterface, run_nft
from vrrpd.kernel.conntrack import Flow
from vrrpd.kernel.link import RtnlClient
from vrrpd.kernel.routes import RTPROT_VRRPD
from vrrpd.proto.packet import IPAddress

log = logging.getLogger("vrrpd.drain")

TABLE = "inet vrrpd_drain"
FWMARK = 0x7672  # "vr"
DRAIN_TABLE = 0x7672  # the routing table of the forwarded flows
FWMARK_RULE_PRIORITY = 1
LOCAL_RULE_PRIORITY = 2  # the moved `local` rule: right after ours
RT_TABLE_LOCAL = 255
FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}
FORWARDING = {4: "ipv4/conf/{}/forwarding", 6: "ipv6/conf/{}/force_forwarding"}
V6_ALL_FORWARDING = ("ipv6/conf/{}/forwarding", "all")
# Early demux hands an arriving packet the socket of its 4-tuple before routing, TIME_WAIT ones
# included, and Linux never forwards a packet that has a socket (ip_forward): a forwarded
# flow whose client port this host closed a minute ago would be dropped.  Off while forwarding
# (it saves a route lookup per packet; IPv6 follows the same switch).
EARLY_DEMUX = "ipv4/tcp_early_demux"


class DrainForwardError(OSError):
    """A forwarding change the kernel refused."""


# A socket in TIME_WAIT (include/net/tcp_states.h) serves no flow: its connection is over.
# sock_diag is asked for the others only (a VIP at 100 connections/s has thousands in it).
TCP_TIME_WAIT = 6
LIVE_STATES = 0xFFF & ~(1 << TCP_TIME_WAIT)


def unknown_flows(tracked: Iterable[Flow], sockets: Iterable[tuple[Flow, int]]) -> set[Flow]:
    """The ``tracked`` flows (conntrack's, to the VIPs) that none of ``sockets`` ((flow, TCP
    state) of this host's sockets) serves: those to forget before forwarding."""
    served = {flow for flow, state in sockets if state != TCP_TIME_WAIT}
    return set(tracked) - served


def forget_unknown_flows(vips: tuple[IPInterface, ...]) -> int:
    """Delete conntrack's entries of TCP flows to ``vips`` (one family) that no socket of
    this host serves; how many.  Blocking netlink: run it in a thread."""
    family = FAMILY[vips[0].version]
    addresses = {v.ip for v in vips}
    with DiagSocket() as diag:
        diag.bind()
        sockets = [((ip_address(m["idiag_dst"]), m["idiag_dport"], ip_address(m["idiag_src"]),
                     m["idiag_sport"]), m["idiag_state"])
                   for m in diag.get_sock_stats(family=family, states=LIVE_STATES)
                   if ip_address(m["idiag_src"]) in addresses]
    tracked = conntrack.tcp_entries_to(family, addresses)
    stale = unknown_flows(tracked, sockets)
    conntrack.delete(family, (tracked[flow] for flow in stale))
    return len(stale)


def chain(instance: str) -> str:
    """``instance``'s chain, named like :func:`vrrpd.kernel.accept_filter.chain`."""
    return f"{TABLE} fw_{instance.replace('_', '__').replace('-', '_d')}"


def mark_rules(instance: str, vips: Iterable[IPInterface]) -> str:
    """The nft script that marks unknown non-SYN TCP flows to ``vips`` (one family)."""
    name, vips = chain(instance), tuple(vips)
    proto = "ip" if vips[0].version == 4 else "ip6"
    daddr = f"{proto} daddr {{ {', '.join(str(v.ip) for v in vips)} }}"
    return "\n".join([
        f"add table {TABLE}",
        f"add chain {name} {{ type filter hook prerouting priority mangle ; policy accept ; }}",
        f"flush chain {name}",
        f"add rule {name} {daddr} tcp flags & (syn | ack) == ack ct state new "
        f"ct mark set {FWMARK:#x}",
        f"add rule {name} {daddr} ct mark {FWMARK:#x} meta mark set {FWMARK:#x} counter",
    ]) + "\n"


def guard_rules(interfaces: Iterable[str]) -> str:
    """The nft script of the shared chains: only marked packets are forwarded from the
    ``interfaces`` where vrrpd turned forwarding on; no ICMP redirect leaves."""
    names = sorted(interfaces)
    lines = [f"add table {TABLE}",
             f"add chain {TABLE} forward {{ type filter hook forward priority filter ; "
             "policy accept ; }",
             f"flush chain {TABLE} forward",
             f"add chain {TABLE} output {{ type filter hook output priority filter ; "
             "policy accept ; }",
             f"flush chain {TABLE} output",
             f"add rule {TABLE} output icmp type redirect drop",
             f"add rule {TABLE} output icmpv6 type nd-redirect drop"]
    if names:
        quoted = ", ".join(f'"{n}"' for n in names)
        lines.append(f"add rule {TABLE} forward iifname {{ {quoted} }} meta mark != "
                     f"{FWMARK:#x} drop")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Forward:
    """What one instance forwards: its VIPs, to ``via`` out of ``interface`` (the instance's
    interface), arriving on ``vip_interface`` (that, or its virtual MAC link)."""

    instance: str
    vips: tuple[IPInterface, ...]
    via: IPAddress
    interface: str
    vip_interface: str

    @property
    def family(self) -> int:
        return self.vips[0].version


class DrainForwarding(RtnlClient):
    """Installs and removes the forwarding of unknown flows; ``open()`` first.  One at a time
    per instance; several instances may forward at once (they share the rules)."""

    def __init__(self) -> None:
        super().__init__()
        self.state_file: Path | None = None  # the sysctls' previous values (set by the daemon)
        self.active: dict[str, Forward] = {}
        self._lock = asyncio.Lock()

    async def start(self, fwd: Forward) -> None:
        """Forward ``fwd``'s unknown flows; idempotent.  On an error, what was done is undone."""
        async with self._lock:
            first_of_family = not any(f.family == fwd.family for f in self.active.values())
            self.active[fwd.instance] = fwd
            try:
                await self._sysctls()
                await asyncio.to_thread(run_nft, guard_rules(self._forwarding_interfaces())
                                        + mark_rules(fwd.instance, fwd.vips))
                await self._forget_unknown_flows(fwd)
                for vip in fwd.vips:
                    await self._request("route", "replace", self._route(vip, fwd, full=True))
                if first_of_family:
                    await self._move_local_rule(fwd.family)
            except (OSError, NetlinkError) as exc:
                del self.active[fwd.instance]
                await self._undo(fwd)
                raise DrainForwardError(getattr(exc, "errno", None) or errno.EIO,
                                        f"cannot forward to {fwd.via}: {exc}") from exc

    @staticmethod
    async def _forget_unknown_flows(fwd: Forward) -> None:
        """See the module docs; a failure costs only the flows it would have saved."""
        try:
            forgotten = await asyncio.to_thread(forget_unknown_flows, fwd.vips)
        except (OSError, NetlinkError) as exc:
            log.warning("[%s] drain: cannot clear conntrack's stale entries for the VIPs (%s); "
                        "an old flow whose client port this host saw close in the last "
                        "minutes may break at the hand-over", fwd.instance, exc)
            return
        if forgotten:
            log.info("[%s] drain: forgot %d conntrack entries of closed flows to the VIPs, so "
                     "an old flow reusing their client port is forwarded too", fwd.instance,
                     forgotten)

    async def stop(self, instance: str) -> None:
        """Stop forwarding ``instance``'s flows (nothing to do if it does not)."""
        async with self._lock:
            fwd = self.active.pop(instance, None)
            if fwd is not None:
                await self._undo(fwd)

    async def _undo(self, fwd: Forward) -> None:
        """Take back what :meth:`start` did for ``fwd``, the shared parts once no instance of
        its family (or any) needs them."""
        if not any(f.family == fwd.family for f in self.active.values()):
            await self._restore_local_rule(fwd.family)
        for vip in fwd.vips:
            await self._request("route", "del", self._route(vip, fwd, full=False))
        script = f"add chain {chain(fwd.instance)}\ndelete chain {chain(fwd.instance)}\n"
        if not self.active:
            script = f"add table {TABLE}\ndelete table {TABLE}\n"
        await asyncio.to_thread(run_nft, script)
        await self._sysctls()

    async def reset(self) -> None:
        """Remove everything a drain may have left (start, stop, after a crash): the local
        rule back at priority 0 first, then our rules, routes, table and sysctls."""
        async with self._lock:
            self.active.clear()
            for family in FAMILY:
                await self._restore_local_rule(family)
            async for msg in await self.rtnl.route("dump", table=DRAIN_TABLE,
                                                   family=socket.AF_UNSPEC):
                if msg.get("table") == DRAIN_TABLE:
                    await self._request("route", "del", {
                        "family": msg["family"], "table": DRAIN_TABLE,
                        "dst": f"{msg.get('dst')}/{msg['dst_len']}"})
            await asyncio.to_thread(run_nft, f"add table {TABLE}\ndelete table {TABLE}\n")
            await self._sysctls()

    # ---- policy routing ------------------------------------------------------------------

    @staticmethod
    def _our_rules(fam: int) -> list[dict[str, Any]]:
        """The fwmark rule and the moved ``local`` rule of ``fam``."""
        return [{"family": fam, "table": DRAIN_TABLE, "fwmark": FWMARK,
                 "priority": FWMARK_RULE_PRIORITY, "protocol": RTPROT_VRRPD},
                {"family": fam, "table": RT_TABLE_LOCAL, "priority": LOCAL_RULE_PRIORITY,
                 "protocol": RTPROT_VRRPD}]

    async def _move_local_rule(self, family: int) -> None:
        fam = FAMILY[family]
        for rule in self._our_rules(fam):
            await self._request("rule", "add", rule)
        for _ in range(await self._local_rules_at_zero(fam)):
            await self._request("rule", "del", {"family": fam, "table": RT_TABLE_LOCAL,
                                                "priority": 0})

    async def _local_rules_at_zero(self, fam: int) -> int:
        """How many ``lookup local`` rules sit at priority 0 (the kernel adds a rule that
        differs from an existing one only in its protocol, so never add one blindly)."""
        return len([msg async for msg in await self.rtnl.rule("dump", family=fam)
                    if msg.get("table") == RT_TABLE_LOCAL and not msg.get("priority")])

    async def _restore_local_rule(self, family: int) -> None:
        """The ``local`` rule at priority 0 first (never a moment without one), then ours."""
        fam = FAMILY[family]
        if not await self._local_rules_at_zero(fam):
            await self._request("rule", "add", {"family": fam, "table": RT_TABLE_LOCAL,
                                                "priority": 0})
        for rule in self._our_rules(fam):
            await self._request("rule", "del", rule)

    @staticmethod
    def _route(vip: IPInterface, fwd: Forward, full: bool) -> dict[str, Any]:
        spec: dict[str, Any] = {"family": FAMILY[vip.version], "table": DRAIN_TABLE,
                                "dst": f"{vip.ip}/{vip.max_prefixlen}", "proto": RTPROT_VRRPD}
        if full:
            spec.update(gateway=str(fwd.via), oif=link.ifindex(fwd.interface))
        return spec

    async def _request(self, kind: str, command: str, spec: dict[str, Any]) -> None:
        """One netlink request; "already there" (add) and "not there" (del) are fine."""
        try:
            await getattr(self.rtnl, kind)(command, **spec)
        except NetlinkError as exc:
            if exc.code not in (errno.EEXIST, errno.ENOENT, errno.ESRCH):
                raise

    # ---- sysctls -------------------------------------------------------------------------

    def _forwarding_interfaces(self) -> set[str]:
        return {f.vip_interface for f in self.active.values()}

    def _wanted_sysctls(self) -> dict[str, int]:
        """The sysctl files (relative to /proc/sys/net) and the values they must read now."""
        wanted = {EARLY_DEMUX: 0} if self.active else {}
        for fwd in self.active.values():
            if fwd.family == 4 or link.sysctl_path(FORWARDING[6], fwd.vip_interface).exists():
                wanted[FORWARDING[fwd.family].format(fwd.vip_interface)] = 1
            else:  # before Linux 6.17 IPv6 forwards only with the global switch
                wanted[V6_ALL_FORWARDING[0].format(V6_ALL_FORWARDING[1])] = 1
        return wanted

    async def _sysctls(self) -> None:
        """Set the sysctls the active drains need and put back the others as they were; the
        previous values live in :attr:`state_file` while they are changed."""
        saved: dict[str, int] = {}
        if self.state_file is not None and self.state_file.exists():
            try:
                saved = {str(k): int(v) for k, v in json.loads(self.state_file.read_text())
                         .items()}
            except (ValueError, AttributeError, OSError) as exc:
                log.error("drain: cannot read %s (%s); sysctls it recorded stay as they are: "
                          "check net.ipv4.conf.*.forwarding and net.ipv4.tcp_early_demux",
                          self.state_file, exc)
        wanted = self._wanted_sysctls()
        for key in wanted:
            if key not in saved:
                value = int(Path("/proc/sys/net", key).read_text())
                if value == wanted[key]:
                    continue  # already so: not ours to put back later
                saved[key] = value
                self._save(saved)
                Path("/proc/sys/net", key).write_text(f"{wanted[key]}\n")
        for key in [k for k in saved if k not in wanted]:
            # an interface that is gone took its setting with it
            with contextlib.suppress(FileNotFoundError):
                Path("/proc/sys/net", key).write_text(f"{saved[key]}\n")
            del saved[key]
        self._save(saved)

    def _save(self, saved: dict[str, int]) -> None:
        if self.state_file is None:
            return
        if not saved:
            self.state_file.unlink(missing_ok=True)
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps(saved))
        os.replace(tmp, self.state_file)
