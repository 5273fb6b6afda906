"""vrrpd's libnftables context is kept for the process (vrrpd/kernel/accept_filter.py,
``run_nft``), one per network namespace: each script still gets its own error message, a dry
run changes nothing, and a thread that enters another namespace changes that namespace's
tables, not the first one's."""

from __future__ import annotations

import sys

from lab.netns import Namespace, Topology

CHILD = """
import sys
from lab.netns import Namespace
from vrrpd.kernel.accept_filter import NftError, run_nft

def refused(script):
    try:
        run_nft(script)
    except NftError as exc:
        return str(exc).splitlines()[0]
    return "accepted"

run_nft("add table inet vrrpd_t1\\n")
print(refused("delete table inet vrrpd_nosuch\\n"))
print(refused("add table inet vrrpd_t2\\n"))
print(refused("add chain inet vrrpd_t9 c\\n"))
run_nft("add table inet vrrpd_t3\\n", dry_run=True)
with Namespace(sys.argv[1]).entered():
    run_nft("add table inet vrrpd_other\\n")
"""


def tables(ns: Namespace) -> list[str]:
    return sorted(ns.run("nft list tables").stdout.split("\n"))[1:]


def test_a_kept_context_reports_each_scripts_error_and_stays_in_its_namespace() -> None:
    with Topology() as lab:
        one = lab.add_node("one", "192.0.2.11/24", "2001:db8::11/64").ns
        two = lab.add_node("two", "192.0.2.12/24", "2001:db8::12/64").ns
        out = one.run([sys.executable, "-c", CHILD, two.name]).stdout.splitlines()
        assert out[0].startswith("nftables refused 'delete table inet vrrpd_nosuch'")
        assert out[1] == "accepted"
        assert out[2].startswith("nftables refused 'add chain inet vrrpd_t9 c'")
        assert tables(one) == ["table inet vrrpd_t1", "table inet vrrpd_t2"]
        assert tables(two) == ["table inet vrrpd_other"]
