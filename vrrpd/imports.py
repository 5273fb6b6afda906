"""Imports that cost a running daemon nothing it does not use.

pyroute2's package ``__init__`` imports every netlink family it speaks (NDB with sqlite3, IPDB,
IPVS, nl80211, WireGuard, conntrack, 9P, ...): 13 MiB of memory and some 100 ms of start-up
before the first of the few rtnetlink classes vrrpd uses.  :func:`defer_package_init` (called
by ``vrrpd/__init__.py``, so before any vrrpd module imports pyroute2) registers the package
without running its ``__init__``; vrrpd imports the submodules it needs by their full names
(``pyroute2.iproute.linux``, ``pyroute2.netlink.exceptions``, ...), about half of that.  The
first ``from pyroute2 import X`` (the lab, the tests) runs the real ``__init__`` then, so
everyone else sees pyroute2 as usual (``tests/test_footprint.py``).
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any


def defer_package_init(name: str) -> None:
    """Register package ``name`` with its ``__init__`` run only when the package is first
    asked for an attribute that is not one of its submodules."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return  # not installed: the import that needs it says so
    loader, package = spec.loader, importlib.util.module_from_spec(spec)

    def initialise(attribute: str) -> Any:
        submodule = f"{name}.{attribute}"
        if importlib.util.find_spec(submodule) is not None:  # `from pyroute2 import config`
            return importlib.import_module(submodule)
        delattr(package, "__getattr__")
        loader.exec_module(package)
        return ModuleType.__getattribute__(package, attribute)

    setattr(package, "__getattr__", initialise)  # noqa: B010 (a module's __getattr__, PEP 562)
    sys.modules[name] = package


