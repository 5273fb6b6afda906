"""vrrpd: a VRRP (RFC 3768 / RFC 5798 / RFC 9568) pair manager for HAProxy load balancers."""

from vrrpd.imports import asyncio_without_ssl, defer_package_init

__version__ = "0.1.0"

defer_package_init("pyroute2")  # vrrpd uses rtnetlink only: see vrrpd/imports.py
asyncio_without_ssl()  # OpenSSL only where TLS is configured: see vrrpd/imports.py
