"""DICOM from a lab node: C-ECHO and C-FIND through the VIP, as a modality or workstation would.

:func:`echo` and :func:`find` open one association each (a new TCP connection, like a
modality's), with short timeouts so a failover shows up as a failed call rather than a hang.
Call them inside ``node.ns.entered()`` to speak from that node: pynetdicom's association
thread is started by the calling thread and inherits its network namespace.

:class:`DicomProber` runs :func:`echo` every ``interval`` seconds in a thread of its own that
enters the node's namespace, and records :class:`lab.client.Sample` objects, so
:func:`lab.client.measure` reports a DICOM outage exactly as it does an HTTP one.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
from typing import TextIO

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import (
    ModalityWorklistInformationFind,
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

from lab.client import Sample
from lab.netns import Node

logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)  # failed calls are results here

CALLING_AE = "LABCLIENT"
PORT_MODELS = {105: StudyRootQueryRetrieveInformationModelFind,  # INFINITT query port
               204: ModalityWorklistInformationFind,  # modality worklist
               104: StudyRootQueryRetrieveInformationModelFind}


def _ae(timeout: float) -> AE:
    ae = AE(ae_title=CALLING_AE)
    ae.connection_timeout = ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    return ae


def associate(host: str, port: int = 104, timeout: float = 1.0) -> Association:
    """A new association offering Verification (C-ECHO); check ``is_established``."""
    ae = _ae(timeout)
    ae.add_requested_context(Verification)
    return ae.associate(host, port, ae_title="PACS")


def echo(host: str, port: int = 104, timeout: float = 1.0) -> bool:
    """One association with one C-ECHO; True when it was accepted and answered Success."""
    assoc = associate(host, port, timeout)
    if not assoc.is_established:
        return False
    try:
        status = assoc.send_c_echo()
        return bool(status) and status.Status == 0x0000
    finally:
        assoc.release()


def find(host: str, port: int, timeout: float = 2.0, key: str = "InstitutionName"
         ) -> str | None:
    """One association with one C-FIND (Study Root, or Worklist on 204); the first match's
    ``key``, None on failure.  ``scripts/pacs-backend`` puts its own name in InstitutionName
    and the address the association came from in InstitutionAddress."""
    model = PORT_MODELS.get(port, StudyRootQueryRetrieveInformationModelFind)
    ae = _ae(timeout)
    ae.add_requested_context(model)
    query = Dataset()
    query.PatientName = "*"
    query.InstitutionName = ""
    query.InstitutionAddress = ""
    if model is not ModalityWorklistInformationFind:
        query.QueryRetrieveLevel = "STUDY"
    assoc = ae.associate(host, port, ae_title="PACS")
    if not assoc.is_established:
        return None
    name = None
    try:
        for status, identifier in assoc.send_c_find(query, model):
            if status and status.Status in (0xFF00, 0xFF01) and identifier is not None:
                name = name or str(identifier.get(key, "")) or None
    finally:
        assoc.release()
    return name


def answers(node: Node, host: str, echo_ports: tuple[int, ...] = (104,),
            find_ports: tuple[int, ...] = (105, 204), within: float = 2.0) -> dict[int, str]:
    """C-ECHO on ``echo_ports`` and C-FIND on ``find_ports`` of ``host`` from ``node`` (a
    retry within ``within`` s, as a modality would); the PACS server that answered each
    C-FIND (the lab tests compare them before and after a failover)."""
    # here, not at the top: lab.daemons needs PyYAML, pyroute2 and vrrpd, which the Vagrant
    # client's Python (pynetdicom only) running ``python -m lab.dicom`` does not have
    from lab.daemons import wait_for

    answered: dict[int, str] = {}

    def all_ok() -> bool:
        with node.ns.entered():
            if not all(echo(host, port) for port in echo_ports):
                return False
            for port in find_ports:
                if (name := find(host, port)) is None:
                    return False
                answered[port] = name
        return True

    wait_for(all_ok, within, f"C-ECHO {echo_ports} and C-FIND {find_ports} to {host}",
             poll=0.05)
    return answered


class DicomProber:
    """C-ECHO to ``host:port`` every ``interval`` seconds from ``node`` (None: from here, as
    ``python -m lab.dicom`` does in a Vagrant machine), from a thread; each finished echo is
    also written to ``out`` as a :meth:`lab.client.Sample.line` when given."""

    def __init__(self, node: Node | None, host: str, port: int = 104, interval: float = 0.2,
                 timeout: float = 0.5, out: TextIO | None = None) -> None:
        self.node = node
        self.host, self.port = host, port
        self.interval, self.timeout = interval, timeout
        self.out = out
        self._samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"dicom-{node.name if node else 'here'}", daemon=True)

    def start(self) -> DicomProber:
        self._thread.start()
        return self

    def _run(self) -> None:
        """Start one echo every ``interval``, each in its own thread (created in the node's
        namespace, so it inherits it): a hanging association never delays the next one."""
        with self.node.ns.entered() if self.node else contextlib.nullcontext():
            tick = time.monotonic()
            while not self._stop.is_set():
                threading.Thread(target=self._echo, daemon=True).start()
                tick += self.interval
                self._stop.wait(max(0.0, tick - time.monotonic()))

    def _echo(self) -> None:
        sent = time.monotonic()
        ok = echo(self.host, self.port, self.timeout)
        sample = Sample(sent, ok, None, (time.monotonic() - sent) * 1000,
                        why="ok" if ok else "no-echo")
        self._samples.append(sample)
        if self.out is not None:
            self.out.write(sample.line())

    def samples(self) -> list[Sample]:
        """Finished echoes, in the order they were sent."""
        return sorted(self._samples, key=lambda s: s.sent)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def main(argv: list[str] | None = None) -> int:
    """``python -m lab.dicom HOST --out FILE``: C-ECHO every 0.2 s until SIGTERM."""
    p = argparse.ArgumentParser(description="C-ECHO to HOST every --interval seconds, one "
                                            "line per echo (lab.client's format) to --out")
    p.add_argument("host")
    p.add_argument("--port", type=int, default=104)
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--timeout", type=float, default=0.5)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with open(args.out, "w", buffering=1) as out:
        prober = DicomProber(None, args.host, args.port, args.interval, args.timeout, out)
        prober.start()
        stop.wait()
        prober.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
