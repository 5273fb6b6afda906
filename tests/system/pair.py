"""The booted Vagrant pair (vagrant/Vagrantfile, lxc provider) as the system tests drive it.

Every step runs a command inside a machine with ``lxc-attach`` (the containers are
``vrbox-<name>``): ``systemctl``, ``vrrpctl``, ``ip``, the client's probers, or a plain file
edit an operator would make.  Nothing here imports vrrpd: the pair is tested from outside, as
its users run it.  Powering a machine off and on is ``lxc-stop -k`` / ``lxc-start`` on the host.

The client runs two probers from the repository (``/vagrant``, read-only) as transient systemd
units: ``lab.client`` (HTTP HEAD to the VIP every 10 ms, 50 ms timeouts) and ``lab.dicom``
(C-ECHO every 200 ms).  Container clocks are the host's CLOCK_MONOTONIC, so a fault's host
timestamp and the probers' samples compare directly (``lab.client.measure``).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar

from lab.client import Outage, Sample, measure, parse_samples

VIP = "192.0.2.100"
LBS = {"192.0.2.11": "lb1", "192.0.2.12": "lb2"}   # eth1 addresses (vagrant/Vagrantfile)
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
OUTAGES: list[str] = []   # printed at the end of the run (conftest.py)

T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float, what: str, every: float = 0.2) -> T:
    """``check()``'s first truthy value within ``timeout`` seconds, else AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(every)


class Machine:
    """One machine of the pair, reached with lxc-attach."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.container = f"vrbox-{name}"

    def sh(self, script: str, check: bool = True, timeout: float = 60,
           user: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = ["lxc-attach", "-n", self.container, "--clear-env", "--set-var", f"PATH={PATH}",
                "--"]
        argv += ["runuser", "-u", user, "--"] if user else []
        done = subprocess.run([*argv, "sh", "-c", script], capture_output=True, text=True,
                              timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"{self.name}: `{script}` exited {done.returncode}:\n"
                                 f"{done.stdout}{done.stderr}")
        return done

    def running(self) -> bool:
        done = subprocess.run(["lxc-info", "-s", "-n", self.container], capture_output=True,
                              text=True, timeout=30)
        return "RUNNING" in done.stdout

    def booted(self) -> bool:
        state = self.sh("systemctl is-system-running", check=False, timeout=10).stdout.strip()
        return state in ("running", "degraded")

    def status(self) -> dict[str, Any] | None:
        """``vrrpctl --json status``, or None while the daemon does not answer.  Its exit code
        is a monitoring verdict (README, vrrpctl), not whether the daemon answered."""
        done = self.sh("vrrpctl --json status", check=False, timeout=10)
        try:
            doc = json.loads(done.stdout)
        except json.JSONDecodeError:
            return None
        return doc if isinstance(doc, dict) and "instances" in doc else None

    def instance(self, name: str = "pacs") -> dict[str, Any] | None:
        status = self.status()
        if status is None:
            return None
        return next((i for i in status["instances"] if i["name"] == name), None)

    def state(self, name: str = "pacs") -> str | None:
        inst = self.instance(name)
        return inst["state"] if inst else None

    def holds_vip(self) -> bool:
        return f" {VIP}/" in self.sh("ip -o -4 addr show dev eth1").stdout

    def unit(self, prop: str, unit: str = "vrrpd") -> str:
        return self.sh(f"systemctl show -p {prop} --value {unit}").stdout.strip()

    def power_off(self) -> None:
        """Pull the power: the container's processes are killed, its links vanish."""
        subprocess.run(["lxc-stop", "-k", "-n", self.container], check=True, timeout=60)

    def power_on(self, wait: bool = True) -> None:
        subprocess.run(["lxc-start", "-n", self.container], check=True, timeout=60)
        if wait:
            wait_for(self.booted, 90, f"{self.name} booted")

    def cable(self, plugged: bool) -> None:
        """Plug or pull eth1's cable: the host end of its veth (``vrbox-<name>-p``, set in
        vagrant/Vagrantfile) up or down, so eth1 in the machine loses or regains carrier."""
        subprocess.run(["ip", "link", "set", f"vrbox-{self.name}-p", "up" if plugged else "down"],
                       check=True, timeout=10)

    def write(self, path: str, text: str) -> None:
        """Replace ``path`` in one step (an editor's save), keeping its mode and owner."""
        self.sh(f"cp -p {path} {path}.new && cat > {path}.new <<'PAIR_EOF'\n{text}PAIR_EOF\n"
                f"mv {path}.new {path}")

    def read(self, path: str) -> str:
        return self.sh(f"cat {path}").stdout


class Client:
    """The client machine's probers: HTTP HEAD every 10 ms and C-ECHO every 200 ms."""

    PROBERS = {
        "http": "/usr/bin/python3 -m lab.client http://{vip}/ --out {out} "
                + " ".join(f"--lb {addr}={name}" for addr, name in LBS.items()),
        "dicom": "/opt/pacs/bin/python -m lab.dicom {vip} --out {out}",
    }

    def __init__(self, machine: Machine) -> None:
        self.machine = machine

    def start(self) -> None:
        started = time.monotonic()
        for kind, command in self.PROBERS.items():
            unit = f"pair-{kind}"
            self.machine.sh(f"systemctl stop {unit} 2>/dev/null; systemctl reset-failed {unit}"
                            f" 2>/dev/null; rm -f /run/{unit}.txt")
            self.machine.sh(
                f"systemd-run -q --unit={unit} --working-directory=/vagrant "
                "-E PYTHONPATH=/vagrant -E PYTHONDONTWRITEBYTECODE=1 "
                + command.format(vip=VIP, out=f"/run/{unit}.txt"))
        for kind in self.PROBERS:
            wait_for(lambda k=kind: any(s.ok and s.sent > started for s in self.samples(k)), 20,
                     f"client: a first answer from the VIP ({kind})")

    def stop(self) -> None:
        self.machine.sh("systemctl stop pair-http pair-dicom", check=False)

    def samples(self, kind: str) -> list[Sample]:
        done = self.machine.sh(f"cat /run/pair-{kind}.txt", check=False, timeout=10)
        return parse_samples(done.stdout)

    def outage(self, fault: float, new_lb: str, wait: float = 30) -> tuple[Outage, Outage]:
        """What the client saw of a failover that began at ``fault`` (host monotonic time):
        waits (bounded) until ``new_lb`` answered HTTP and a C-ECHO succeeded after it, plus
        one more second so the DICOM gap is closed by a success."""
        def served() -> bool:
            return (any(s.sent > fault and s.ok and s.lb == new_lb for s in self.samples("http"))
                    and any(s.sent > fault and s.ok for s in self.samples("dicom")))
        wait_for(served, wait, f"client: answers through {new_lb} after the fault", every=0.5)
        time.sleep(1)
        return (measure(self.samples("http"), fault, new_lb),
                measure(self.samples("dicom"), fault))


def report(event: str, web: Outage, dicom: Outage) -> str:
    """Print one failover as the client saw it and keep it for the run's summary (and for
    $PAIR_OUTAGES, the JSON lines scripts/pair-test collects)."""
    line = (f"{event:<44} web {web.outage_ms:5.0f} ms, {web.failed:3d} failed, via "
            f"{web.new_lb} | C-ECHO gap {dicom.outage_ms:4.0f} ms, {dicom.failed} failed")
    print(line)
    OUTAGES.append(line)
    if path := os.environ.get("PAIR_OUTAGES"):
        with open(path, "a") as out:
            out.write(json.dumps({"event": event, "web": asdict(web),
                                  "dicom": asdict(dicom)}) + "\n")
    return line
