"""A real uvicorn process on a free loopback port: readiness, a prediction, errors, SIGTERM."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from benchmarks.server import start_uvicorn


@pytest.fixture(scope="module")
def server(shipped_bundle_dir):
    proc, base, _ = start_uvicorn({"MODEL_DIR": str(shipped_bundle_dir)}, capture_output=True)
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
