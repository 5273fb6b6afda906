"""Long transfers through the VIP from a lab node, for the draining hand-over (issue 20).

:class:`HttpDownload` reads ``GET /download?bytes=N&seconds=S`` (``scripts/pacs-backend``)
over one TCP connection; :class:`DicomStore` stores a "study" of ``images`` CT instances of
``image_bytes`` each over ONE association, paced over ``seconds``, as a modality sends a CT
series.  Each runs in a thread that enters the node's namespace and records how far it got,
how it ended (``error`` None = complete) and whether the connection was reset.  They are what
the lab test, the demo and ``benchmarks/drain_handover.py`` run across a hand-over.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from lab.netns import Node

logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)


@dataclass
class Transfer:
    """How far a transfer got: ``done`` of ``total`` (bytes or images), ``error`` when it did
    not complete (``reset``: the peer sent a TCP RST), times on the monotonic clock."""

    kind: str
    total: int
    done: int = 0
    error: str | None = None
    reset: bool = False
    started: float = 0.0
    ended: float | None = None
    served_by: str | None = None  # the X-Backend header / the association's peer
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 0.0

    @property
    def complete(self) -> bool:
        return self.error is None and self.done == self.total

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "total": self.total, "done": self.done,
                "percent": round(self.percent, 2), "error": self.error, "reset": self.reset,
                "seconds": None if self.ended is None else round(self.ended - self.started, 3),
                "served_by": self.served_by}


class _Runner:
    def __init__(self, node: Node, result: Transfer) -> None:
        self.node = node
        self.result = result
        self._thread = threading.Thread(target=self._enter, daemon=True,
                                        name=f"{result.kind}-{node.name}")

    def start(self) -> _Runner:
        self.result.started = time.monotonic()
        self._thread.start()
        return self

    def _enter(self) -> None:
        with self.node.ns.entered():
            try:
                self._run()
            except ConnectionResetError as exc:
                self.result.error, self.result.reset = f"connection reset: {exc}", True
            except Exception as exc:  # the result says how it ended
                self.result.error = f"{type(exc).__name__}: {exc}"
            finally:
                self.result.ended = time.monotonic()

    def _run(self) -> None:
        raise NotImplementedError

    def wait(self, timeout: float) -> Transfer:
        self._thread.join(timeout)
        if self._thread.is_alive() and self.result.error is None:
            self.result.error = f"still running after {timeout:g}s"
        return self.result


class HttpDownload(_Runner):
    def __init__(self, node: Node, host: str, size: int, seconds: float, port: int = 80,
                 timeout: float = 10.0, source_port: int = 0) -> None:
        super().__init__(node, Transfer("http", size))
        self.host, self.port, self.size, self.seconds = host, port, size, seconds
        self.timeout, self.source_port = timeout, source_port

    def _run(self) -> None:
        conn = http.client.HTTPConnection(
            self.host, self.port, timeout=self.timeout,
            source_address=("", self.source_port) if self.source_port else None)
        try:
            conn.request("GET", f"/download?bytes={self.size}&seconds={self.seconds}")
            resp = conn.getresponse()
            self.result.served_by = resp.getheader("X-Backend")
            if resp.status != 200:
                self.result.error = f"HTTP {resp.status}"
                return
            while chunk := resp.read(65536):
                self.result.done += len(chunk)
            if self.result.done < self.size:
                self.result.error = f"connection closed after {self.result.done} bytes"
        finally:
            conn.close()


def ct_instance(size: int, study: str, series: str, number: int) -> Dataset:
    """A CT Image Storage instance whose pixel data is ``size`` bytes."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.PatientName, ds.PatientID, ds.Modality = "DOE^JANE", "PID0001", "CT"
    ds.InstanceNumber = number
    side = int((size // 2) ** 0.5)
    ds.Rows = ds.Columns = side
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(side * side * 2)
    return ds


class DicomStore(_Runner):
    def __init__(self, node: Node, host: str, images: int, image_bytes: int, seconds: float,
                 port: int = 104, timeout: float = 10.0) -> None:
        super().__init__(node, Transfer("dicom", images))
        self.host, self.port, self.image_bytes = host, port, image_bytes
        self.seconds, self.timeout = seconds, timeout

    def _run(self) -> None:
        ae = AE(ae_title="MODALITY")
        ae.connection_timeout = ae.acse_timeout = ae.network_timeout = self.timeout
        ae.dimse_timeout = self.timeout
        ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
        assoc = ae.associate(self.host, self.port, ae_title="PACS")
        if not assoc.is_established:
            self.result.error = "association not established"
            return
        self.result.served_by = f"{self.host}:{self.port}"
        study, series = generate_uid(), generate_uid()
        total = self.result.total
        try:
            for n in range(total):
                status = assoc.send_c_store(ct_instance(self.image_bytes, study, series, n + 1))
                if not status or status.Status != 0x0000:
                    self.result.reset = assoc.is_aborted
                    self.result.error = (f"C-STORE {n + 1} failed: association "
                                         f"{'aborted' if assoc.is_aborted else 'lost'}")
                    return
                self.result.done += 1
                ahead = self.result.started + self.seconds * (n + 1) / total - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        finally:
            if assoc.is_established:
                assoc.release()
