"""Imports that cost a running daemon nothing it does not use.

pyroute2's package ``__init__`` imports every netlink family it speaks (NDB with sqlite3, IPDB,
IPVS, nl80211, WireGuard, conntrack, 9P, ...): 13 MiB of memory and some 100 ms of start-up
before the first of the few rtnetlink classes vrrpd uses.  :func:`defer_package_init` (called
by ``vrrpd/__init__.py``, so before any vrrpd module imports pyroute2) registers the package
without running its ``__init__``; vrrpd imports the submodules it needs by their full names
(``pyroute2.iproute.linux``, ``pyroute2.netlink.exceptions``, ...), about half of that.  The
first ``from pyroute2 import X`` (the lab, the tests) runs the real ``__init__`` then, so
everyone else sees pyroute2 as usual (``tests/test_footprint.py``).  asyncio likewise loads
``ssl`` only when something first uses it (:func:`asyncio_without_ssl`).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any


def defer_package_init(name: str, then: Callable[[ModuleType], None] | None = None) -> None:
    """Register module or package ``name`` with its code run only when it is first asked for
    an attribute that is not one of its submodules (then ``then(module)`` runs)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return  # not installed: the import that needs it says so
    loader, package = spec.loader, importlib.util.module_from_spec(spec)
    has_submodules = spec.submodule_search_locations is not None

    def initialise(attribute: str) -> Any:
        submodule = f"{name}.{attribute}"
        if has_submodules and importlib.util.find_spec(submodule) is not None:
            return importlib.import_module(submodule)  # `from pyroute2 import config`
        delattr(package, "__getattr__")
        loader.exec_module(package)
        if then is not None:
            then(package)
        return ModuleType.__getattribute__(package, attribute)

    setattr(package, "__getattr__", initialise)  # noqa: B010 (a module's __getattr__, PEP 562)
    sys.modules[name] = package


# asyncio's modules that hold the ssl module (``ssl = None`` on a Python without it), and
# what sslproto derives from it when imported (CPython 3.11/3.12, Lib/asyncio/).
ASYNCIO_SSL_USERS = ("asyncio.base_events", "asyncio.selector_events", "asyncio.sslproto")


def asyncio_without_ssl() -> None:
    """Load OpenSSL (the ``ssl`` module) only when something first uses it.

    asyncio and pyroute2's rtnetlink import ``ssl`` at once (OpenSSL's libraries: 5 MiB of
    memory, 10 ms), but a daemon without ``config_sync:`` (TLS) or an ``https://`` tracker
    never uses it.  So ``ssl`` is deferred like pyroute2 (:func:`defer_package_init`: loaded
    on its first attribute access), and asyncio, which reads two of its exceptions when
    imported, is imported first with ``ssl`` blocked, as on a Python built without it (its
    modules fall back to ``ssl = None``).  When ``ssl`` loads, asyncio's modules get it; from
    that moment asyncio is as usual (``tests/test_footprint.py``).
    """
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        return  # too late, or nothing to save
    sys.modules["ssl"] = None  # type: ignore[assignment]  # `import ssl` raises ImportError
    try:
        import asyncio  # noqa: F401
    finally:
        del sys.modules["ssl"]
    defer_package_init("ssl", _give_asyncio_ssl)


def _give_asyncio_ssl(ssl: ModuleType) -> None:
    for name in ASYNCIO_SSL_USERS:
        sys.modules[name].ssl = ssl  # type: ignore[attr-defined]
    sys.modules["asyncio.sslproto"].SSLAgainErrors = (  # type: ignore[attr-defined]
        ssl.SSLWantReadError, ssl.SSLSyscallError)
