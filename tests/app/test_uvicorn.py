"""A real uvicorn process on a free loopback port: readiness, a prediction, errors, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(shipped_bundle_dir):
    port = free_port()
    env = {**os.environ, "MODEL_DIR": str(shipped_bundle_dir), "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            pytest.fail(f"uvicorn exited: {proc.stdout.read().decode(errors='replace')[-2000:]}")
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("uvicorn did not become ready within 120 s")
    yield base, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_real_server_predicts_and_refuses(server, synthetic_xray):
    base, _ = server
    ok = httpx.post(f"{base}/predict", files={"file": ("x.png", synthetic_xray)}, timeout=30)
    assert ok.status_code == 200 and ok.json()["heatmap"]
    bad = httpx.post(f"{base}/predict", files={"file": ("x.jpg", b"%PDF-1.7")}, timeout=30)
    assert bad.status_code == 415
    none = httpx.post(
        f"{base}/predict",
        params={"heatmap": "false"},
        files={"file": ("x.png", synthetic_xray)},
        timeout=30,
    )
    assert none.json()["heatmap"] is None


@pytest.mark.slow
def test_sigterm_finishes_the_request_in_flight(server, synthetic_xray):
    base, proc = server
    with httpx.Client(timeout=30) as http:
        import threading

        result = {}

        def slow_request():
            result["response"] = http.post(
                f"{base}/predict", files={"file": ("x.png", synthetic_xray)}
            )

        thread = threading.Thread(target=slow_request)
        thread.start()
        time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        thread.join(30)
    assert result["response"].status_code == 200
    # uvicorn shuts down cleanly, then re-raises the signal so the exit status reports it.
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    log = proc.stdout.read().decode(errors="replace")
    assert "Application shutdown complete" in log
