"""HAProxy SIGKILL with keepalived's event-driven ``vrrp_track_process``, beside vrrpd.

Run as root from a clean clone (``scripts/setup-host`` once)::

    .venv/bin/python benchmarks/track_process.py --runs 10 [--intervals 0.1 1]

keepalived's ``vrrp_track_process`` hears of process exits from the kernel's process-event
connector, which answers only in the initial network namespace (:func:`lab.rootns.proc_connector`
is asked in the root namespace and in a lab namespace, both answers recorded; in a namespace
keepalived stays in FAULT).  So this benchmark puts lb1 in the root namespace, on its own veth
with IPv6 in 2001:db8:bec::/64 only, removed afterwards (:mod:`lab.rootns`,
:class:`lab.track_process_pair.TrackProcessPair`): real HAProxy 2.6 master-worker on lb1 and
lb2, a backend, a client sending HTTP HEAD to the VIP every 10 ms (50 ms timeouts), VRRPv3.

Per daemon and advert interval, ``--runs`` times at a random phase (:mod:`lab.phase`):
SIGKILL lb1's HAProxy master, measure the client's outage until lb2 serves
(:func:`lab.client.measure`), start HAProxy again and wait for lb1 to serve.  keepalived
tracks HAProxy's command line (quorum 2: master and worker); vrrpd runs its ``haproxy``
tracker in the same arrangement.  Prints the table of benchmarks/failover.py and writes
``benchmarks/results/track-process-<UTC time>.json``.  Exits 2 when keepalived is not
installed or the connector does not answer in the root namespace, unless
``--skip-keepalived``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.failover import compare  # noqa: E402
from benchmarks.record import SKIP_KEEPALIVED, require_keepalived  # noqa: E402
from lab.netns import Namespace  # noqa: E402
from lab.rootns import proc_connector  # noqa: E402
from lab.track_process_pair import TrackProcessPair  # noqa: E402


def connector_here_and_in_a_namespace() -> dict[str, str]:
    """The process-event connector as keepalived meets it: root namespace and lab namespace."""
    ns = Namespace.create(f"vt{random.randbytes(3).hex()}-probe")
    try:
        with ns.entered():
            inside = proc_connector()
    finally:
        ns.delete()
    return {"root_namespace": proc_connector(), "lab_namespace": inside}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--intervals", type=float, nargs="+", default=[0.1, 1.0])
    p.add_argument(SKIP_KEEPALIVED, action="store_true", help="measure vrrpd only")
    p.add_argument("--seed", type=int, help="seed of the fault phases (default: random)")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("track_process.py: run as root (namespaces, a link in the root namespace)",
              file=sys.stderr)
        return 1
    connector = connector_here_and_in_a_namespace()
    print(f"process-event connector: root namespace {connector['root_namespace']}, "
          f"lab namespace {connector['lab_namespace']}")
    daemons = ["vrrpd"]
    if require_keepalived(args.skip_keepalived, "track_process.py"):
        if connector["root_namespace"] != "works":
            print("track_process.py: the process-event connector does not answer in this "
                  f"network namespace ({connector['root_namespace']}), so keepalived's "
                  "vrrp_track_process cannot work here; run it in the initial network "
                  f"namespace or pass {SKIP_KEEPALIVED}", file=sys.stderr)
            return 2
        daemons.append("keepalived")
    compare("track-process", args, daemons, ["haproxy-kill"], TrackProcessPair,
            proc_connector=connector,
            keepalived_check="vrrp_track_process on HAProxy's command line, quorum 2 "
                             "(lab.haproxy_pair.keepalived_config), lb1 in the root namespace")
    return 0


if __name__ == "__main__":
    sys.exit(main())
