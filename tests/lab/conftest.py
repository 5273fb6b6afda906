"""Lab fixtures: real kernel, real namespaces.  See :mod:`netns` for the building blocks.

Every test in this directory is marked ``lab`` and skipped unless running as root with
iproute2.  The topology library is :mod:`lab.netns` (the demo and the benchmarks use it too);
helpers in this directory (``daemons``) import as top-level modules, since the directory has no
``__init__.py``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import takeover
from lab.netns import Topology

requires_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="lab tests need root and iproute2 (network namespaces)",
)

LAB_DIR = Path(__file__).parent
LAB_TIMEOUT = 180  # seconds per lab test (pytest-timeout); the longest takes about a minute


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if LAB_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.lab)
            item.add_marker(requires_root)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(LAB_TIMEOUT))


@pytest.fixture
def two_nodes() -> Iterator[Topology]:
    """Two load balancers on one switch, deleted after the test (:func:`lab.takeover.two_nodes`)."""
    with takeover.two_nodes() as lab:
        yield lab
