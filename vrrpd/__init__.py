"""vrrpd: a VRRP (RFC 3768 / RFC 5798 / RFC 9568) pair manager for HAProxy load balancers."""

__version__ = "0.1.0"
