"""TCP listeners (config sync, metrics) that bind before their address exists.

vrrpd starts in any network state (its instances wait in FAULT until their interface is
usable), so a listener on this node's own address (``sync: listen: 192.0.2.11:7000``) must not
fail the start when that address is not configured yet.  IP_FREEBIND (ip(7)) / IPV6_FREEBIND
let the socket bind anyway; it receives connections as soon as the address appears.
"""

from __future__ import annotations

import socket
from ipaddress import ip_address

IP_FREEBIND = 15  # <linux/in.h>
IPV6_FREEBIND = 78  # <linux/in6.h>, Linux 4.15
BACKLOG = 64


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host`` (an IP address) and ``port`` (0: any free port)."""
    family = socket.AF_INET6 if ip_address(host).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock
