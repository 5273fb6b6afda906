"""scripts/pacs-backend, the stand-in PACS of the Vagrant pair and the failover test.

Started on loopback with free ports; a real pynetdicom client checks what HAProxy's checks and
the failover test rely on: C-ECHO, a Study Root and a worklist C-FIND answered with one study
naming the backend, and HTTP HEAD/GET naming it too.
"""

from __future__ import annotations

import http.client
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (
    ModalityWorklistInformationFind,
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

SCRIPT = Path(__file__).resolve().parents[1] / "scripts/pacs-backend"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def backend() -> Iterator[tuple[int, int, subprocess.Popen[str]]]:
    http_port, dicom_port = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--bind", "127.0.0.1",
                             "--name", "pacs-test", "--http-port", str(http_port),
                             "--dicom-port", str(dicom_port)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "pacs-backend pacs-test" in proc.stdout.readline()  # printed once listening
        yield http_port, dicom_port, proc
    finally:
        proc.terminate()
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:  # its stacks go to this teardown's stderr
            proc.send_signal(signal.SIGUSR1)
            time.sleep(1)
            proc.kill()
            code = proc.wait()
        assert code == 0  # SIGTERM is a clean stop


def test_http_head_and_get_name_the_backend(backend: tuple[int, int, Any]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", backend[0], timeout=5)
    conn.request("HEAD", "/")
    head = conn.getresponse()
    head.read()
    assert (head.status, head.getheader("X-Backend")) == (200, "pacs-test")
    conn.request("GET", "/")  # the same connection: keep-alive works
    assert conn.getresponse().read() == b"pacs-test\n"
    conn.close()


def test_dicom_echo_and_find(backend: tuple[int, int, Any]) -> None:
    ae = AE(ae_title="TESTSCU")
    for context in (Verification, StudyRootQueryRetrieveInformationModelFind,
                    ModalityWorklistInformationFind):
        ae.add_requested_context(context)
    start = time.monotonic()
    assoc = ae.associate("127.0.0.1", backend[1], ae_title="PACS")
    assert assoc.is_established
    try:
        assert assoc.send_c_echo().Status == 0x0000
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.PatientName = "*"
        query.StudyInstanceUID = ""
        found = [(s.Status, i.InstitutionName if i else None)
                 for s, i in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind)]
        assert found == [(0xFF00, "pacs-test"), (0x0000, None)]
        query = Dataset()
        query.PatientName = "*"
        worklist = [s.Status for s, _ in assoc.send_c_find(query,
                                                           ModalityWorklistInformationFind)]
        assert worklist == [0xFF00, 0x0000]
    finally:
        assoc.release()
    assert time.monotonic() - start < 10


def test_a_pause_drops_no_connection(backend: tuple[int, int, subprocess.Popen[str]]) -> None:
    """While the backend does not accept (stopped here; a long garbage collection in real
    life), the kernel still completes 40 handshakes per port and queues them: none has its SYN
    dropped, which would cost it TCP's 1 s retransmission timeout.  With Python's default
    backlog of 5 only 6 per port completed."""
    http_port, dicom_port, proc = backend
    socks: list[socket.socket] = []
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        for port in (http_port, dicom_port):
            for _ in range(40):
                s = socket.socket()
                s.setblocking(False)
                socks.append(s)
                s.connect_ex(("127.0.0.1", port))
        pending, deadline = set(socks), time.monotonic() + 0.5
        while pending and time.monotonic() < deadline:
            pending -= set(select.select([], list(pending), [], 0.05)[1])
        assert not pending, f"{len(pending)} of {len(socks)} connections had no SYN-ACK"
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        for s in socks:
            s.close()
    test_http_head_and_get_name_the_backend(backend)  # it goes on serving
