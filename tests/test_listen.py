"""Listeners bind before their address exists (vrrpd starts in any network state)."""

from __future__ import annotations

import socket

import pytest

from vrrpd.kernel.listen import listening_socket


@pytest.mark.parametrize("host", ["203.0.113.77", "2001:db8::77"])
def test_binds_an_address_this_host_does_not_have_yet(host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as plain, pytest.raises(OSError):
        plain.bind((host, 0))  # what a listener without IP_FREEBIND gets: EADDRNOTAVAIL
    sock = listening_socket(host, 0)
    try:
        assert sock.getsockname()[0] == host and sock.getsockname()[1] > 0
    finally:
        sock.close()


def test_a_port_in_use_is_an_error_naming_the_endpoint() -> None:
    """SO_REUSEADDR does not let a second listener take a port that is listening."""
    first = listening_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    try:
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            listening_socket("127.0.0.1", port)
    finally:
        first.close()
