"""Conntrack's TCP entries to some addresses, listed and deleted in bulk over ctnetlink.

Raw netlink (``NETLINK_NETFILTER``, subsystem ``CTNETLINK``), because this runs on the
take-over path of a draining hand-over (:mod:`vrrpd.kernel.drain_forward`), where a VIP
serving 100 new connections a second has some 12,000 entries in TIME_WAIT: pyroute2's
conntrack binding parses each dumped entry into objects and waits for each deletion's answer,
about 1 ms per entry (12 s); here a dump is read with :mod:`struct` and the deletions go out
in batches, unanswered unless they fail.

A deletion carries the entry's ``CTA_TUPLE_ORIG`` attribute exactly as the dump returned it.
Message and attribute numbers: ``include/uapi/linux/netfilter/nfnetlink_conntrack.h``.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Iterable, Iterator
from ipaddress import IPv4Address, IPv6Address, ip_address

from vrrpd.proto.packet import IPAddress

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_GET, IPCTNL_MSG_CT_DELETE = 1, 2
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER
CTA_TUPLE_ORIG = 1
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_SRC: dict[int, int] = {socket.AF_INET: 1, socket.AF_INET6: 3}  # CTA_IP_V4/V6_SRC
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
NFGENMSG = struct.Struct("=BBH")  # struct nfgenmsg: family, version, res_id
BATCH = 64 * 1024  # bytes of deletions per send

Flow = tuple[IPAddress, int, IPAddress, int]  # source address and port, destination and port


def _attributes(data: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """The netlink attributes in ``data``: (type, payload, the whole attribute)."""
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            return
        whole = data[offset:offset + length]
        yield kind & NLA_TYPE_MASK, whole[4:], whole
        offset += (length + 3) & ~3


def parse_tuple(family: int, payload: bytes) -> Flow | None:
    """A ``CTA_TUPLE_ORIG`` payload as a TCP flow (None for another protocol)."""
    addresses: dict[int, IPAddress] = {}
    proto, ports = None, {}
    for kind, value, _ in _attributes(payload):
        if kind == CTA_TUPLE_IP:
            for ip_kind, raw, _ in _attributes(value):
                if ip_kind - CTA_IP_SRC[family] in (0, 1):
                    addresses[ip_kind - CTA_IP_SRC[family]] = (
                        IPv4Address(raw) if family == socket.AF_INET else IPv6Address(raw))
        elif kind == CTA_TUPLE_PROTO:
            for proto_kind, raw, _ in _attributes(value):
                if proto_kind == CTA_PROTO_NUM:
                    proto = raw[0]
                elif proto_kind in (CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT):
                    ports[proto_kind] = struct.unpack("!H", raw[:2])[0]
    if proto != socket.IPPROTO_TCP or len(addresses) != 2 or len(ports) != 2:
        return None
    return (addresses[0], ports[CTA_PROTO_SRC_PORT], addresses[1], ports[CTA_PROTO_DST_PORT])


def _message(kind: int, flags: int, family: int, payload: bytes = b"", seq: int = 0) -> bytes:
    body = NFGENMSG.pack(family, 0, 0) + payload
    return HEADER.pack(HEADER.size + len(body), (NFNL_SUBSYS_CTNETLINK << 8) | kind,
                       NLM_F_REQUEST | flags, seq, 0) + body


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    return sock


def tcp_entries_to(family: int, addresses: Iterable[IPAddress]) -> dict[Flow, bytes]:
    """Conntrack's TCP entries of ``family`` whose original destination is one of
    ``addresses``: flow -> its raw ``CTA_TUPLE_ORIG`` (for :func:`delete`)."""
    wanted = {ip_address(a) for a in addresses}
    found: dict[Flow, bytes] = {}
    with _socket() as sock:
        sock.send(_message(IPCTNL_MSG_CT_GET, NLM_F_DUMP, family, seq=1))
        while True:
            data = sock.recv(1 << 20)
            offset = 0
            while offset + HEADER.size <= len(data):
                length, kind, _flags, _seq, _pid = HEADER.unpack_from(data, offset)
                if length < HEADER.size:
                    raise OSError(errno.EPROTO, "conntrack: malformed netlink message")
                if kind == NLMSG_DONE:
                    return found
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", data, offset + HEADER.size)[0]
                    raise OSError(code, f"conntrack dump: {errno.errorcode.get(code, code)}")
                attrs = data[offset + HEADER.size + NFGENMSG.size:offset + length]
                raw = next((whole for k, _, whole in _attributes(attrs) if k == CTA_TUPLE_ORIG),
                           None)
                flow = parse_tuple(family, raw[4:]) if raw is not None else None
                if raw is not None and flow is not None and flow[2] in wanted:
                    found[flow] = raw
                offset += (length + 3) & ~3


def delete(family: int, tuples: Iterable[bytes]) -> None:
    """Delete the entries of these raw ``CTA_TUPLE_ORIG`` attributes; one already gone (it
    expired meanwhile) is no error."""
    with _socket() as sock:
        batch = bytearray()
        for raw in tuples:
            batch += _message(IPCTNL_MSG_CT_DELETE, 0, family, raw)
            if len(batch) >= BATCH:
                sock.send(bytes(batch))
                batch.clear()
        if batch:
            sock.send(bytes(batch))
        # the kernel has handled them when send() returns; a failure (ENOENT) comes back as
        # an error message, dropped with the socket
