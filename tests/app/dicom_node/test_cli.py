"""`python -m app dicom-node` as IT runs it: the ready line, JSON logs, metrics, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx

from app.dicom_node.orthanc import free_port
from tests.app.dicom_node.conftest import Receiver, cr_film, send


def test_node_command_serves_logs_and_stops(tmp_path, shipped_bundle_dir):
    pacs = Receiver()
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "MODEL_DIR": str(shipped_bundle_dir),
        "DICOM_PORT": str(port),
        "DICOM_METRICS_PORT": str(metrics_port),
        "DICOM_SPOOL_DIR": str(tmp_path / "spool"),
        "DICOM_DESTINATION": f"PACS@127.0.0.1:{pacs.port}",
        "LOG_FORMAT": "json",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "dicom-node"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[dict] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if line.startswith("{"):
                lines.append(json.loads(line))
                if "ready at" in lines[-1]["message"]:
                    break
        ready = lines[-1]["message"]
        assert (
            f"CXR_AI ready at 127.0.0.1:{port}" in ready and f"PACS@127.0.0.1:{pacs.port}" in ready
        )
        assert send(port, [cr_film(41)]) == [0]
        pacs.wait_for(2)
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        assert "cxr_dicom_received_total 1.0" in metrics
        assert "cxr_dicom_results_sent_total 2.0" in metrics
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        lines += [json.loads(line) for line in process.stderr if line.startswith("{")]
    finally:
        if process.poll() is None:
            process.kill()
        pacs.stop()
    (film,) = [line for line in lines if line.get("outcome") in ("PNEUMONIA", "NORMAL")]
    assert len(film["study"]) == 12 and film["results"] == 2 and film["ms"] > 0


def test_an_unwritable_spool_is_one_clear_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = subprocess.run(
        [sys.executable, "-m", "app", "dicom-node"],
        env={**os.environ, "DICOM_SPOOL_DIR": str(blocker / "spool"), "DICOM_PORT": "0"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "cannot be written" in result.stderr and "Traceback" not in result.stderr
