"""``scripts/lab``: a two-node vrrpd pair in network namespaces on this machine.

``demo`` (default) builds the lab, shows who is master and where the VIP is, fails the master
in two ways (switch port down, then SIGTERM), shows each takeover with its measured time, and
tears everything down.  ``up`` leaves the lab running (``vrrpctl --socket`` lines are printed),
``status`` shows it, ``down`` removes everything the lab made, including leftovers of a crashed
run.  Everything lives in namespaces named ``vrlab-*`` and in ``/run/vrrpd-lab``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from vrrpd.cli.render import render_status
from vrrpd.cli.vrrpctl import ControlError, request
from vrrpd.lab.netns import Namespace, Topology

PREFIX = "vrlab"
RUN = Path("/run/vrrpd-lab")
VIP = "192.0.2.100/24"
NODES = {"lb1": ("192.0.2.11/24", "2001:db8::11/64", 150),
         "lb2": ("192.0.2.12/24", "2001:db8::12/64", 100)}
CLIENT = ("client", "192.0.2.50/24", "2001:db8::50/64")
INTERVAL = 0.1
PAUSE = 1.5  # seconds between demo steps, so a human can follow


def say(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {msg}", flush=True)


def down(quiet: bool = False) -> None:
    """Remove every ``vrlab-*`` namespace and kill what runs in it; safe to run any time."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    names = [line.split()[0] for line in out.splitlines() if line.startswith(f"{PREFIX}-")]
    for name in names:
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                              text=True).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)
    time.sleep(0.3 if names else 0)
    for name in names:
        for pid in subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                                  text=True).stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        Namespace(name).delete()
    shutil.rmtree(RUN, ignore_errors=True)
    if not quiet:
        say(f"lab removed ({len(names)} namespace(s))" if names else "no lab was running")


def socket_of(node: str) -> Path:
    return RUN / node / "vrrpd.sock"


def up() -> Topology:
    down(quiet=True)
    RUN.mkdir(parents=True, exist_ok=True)
    lab = Topology(prefix=PREFIX)
    for name, (v4, v6, _prio) in NODES.items():
        lab.add_node(name, v4, v6)
    lab.add_node(*CLIENT)
    for name, (_v4, _v6, prio) in NODES.items():
        d = RUN / name
        d.mkdir(exist_ok=True)
        cfg = {"node": name, "control_socket": str(socket_of(name)), "state_dir": str(d),
               "instances": [{"name": "web", "interface": "eth0", "vrid": 51,
                              "priority": prio, "advert_interval": INTERVAL, "vips": [VIP]}]}
        (d / "vrrpd.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        with (d / "vrrpd.log").open("ab") as log:
            lab.nodes[name].ns.popen([sys.executable, "-m", "vrrpd", "-c", str(d / "vrrpd.yaml")],
                                     stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
    say(f"lab up: lb1 (priority 150) and lb2 (priority 100) share VIP {VIP}, "
        f"VRRPv3 every {INTERVAL:g}s; client 192.0.2.50")
    return lab


def status_of(node: str) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = request(str(socket_of(node)), "status", {}, timeout=2)
    except (ControlError, OSError):
        return None
    return result


def master() -> str | None:
    for node in NODES:
        doc = status_of(node)
        if doc and doc["instances"][0]["state"] == "MASTER" and doc["instances"][0]["vips_held"]:
            return node
    return None


def wait_master(exclude: str | None = None, timeout: float = 10) -> tuple[str, float]:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        m = master()
        if m is not None and m != exclude:
            return m, time.monotonic() - start
        time.sleep(0.005)
    raise SystemExit(f"lab: no master after {timeout}s; logs are in {RUN}/*/vrrpd.log")


def show() -> None:
    for node in NODES:
        doc = status_of(node)
        if doc is None:
            print(f"--- {node}: vrrpd not answering")
            continue
        print(f"--- {node} (vrrpctl --socket {socket_of(node)} status)")
        print(render_status(doc))


def demo(keep: bool) -> None:
    lab = up()
    try:
        m, took = wait_master()
        say(f"{m} is MASTER and holds {VIP} (elected in {took:.2f}s)")
        show()
        other = "lb2" if m == "lb1" else "lb1"
        time.sleep(PAUSE)
        say(f"pulling {m}'s cable (switch port down)...")
        lab.set_link(m, False)
        new, took = wait_master(exclude=m)
        say(f"{new} took over {VIP} after {took * 1000:.0f} ms")
        time.sleep(PAUSE)
        say(f"plugging {m} back in: it has the higher priority and preempts back")
        lab.set_link(m, True)
        back, took = wait_master(exclude=other)
        say(f"{back} is MASTER again after {took * 1000:.0f} ms")
        time.sleep(PAUSE)
        say(f"stopping vrrpd on {back} (SIGTERM: it resigns with a priority-0 advert)")
        for pid in subprocess.run(["ip", "netns", "pids", lab.nodes[back].ns.name],
                                  capture_output=True, text=True).stdout.split():
            os.kill(int(pid), signal.SIGTERM)
        new, took = wait_master(exclude=back)
        say(f"{new} took over {VIP} after {took * 1000:.0f} ms")
        show()
    finally:
        if keep:
            say("lab left running; `scripts/lab down` removes it")
        else:
            down()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/lab", description=__doc__.split("\n\n")[0])
    p.add_argument("command", nargs="?", default="demo", choices=["demo", "up", "status", "down"])
    p.add_argument("--keep", action="store_true", help="demo: leave the lab running")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("scripts/lab: run as root: the lab creates network namespaces", file=sys.stderr)
        return 1
    if args.command == "down":
        down()
    elif args.command == "up":
        up()
        m, _ = wait_master()
        say(f"{m} is MASTER and holds {VIP}")
        show()
    elif args.command == "status":
        show()
    else:
        demo(args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
