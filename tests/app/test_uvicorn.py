"""A real uvicorn process on a free loopback port: readiness, a prediction, errors, SIGTERM, and
metrics summed over several workers."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from benchmarks.server import start_uvicorn
from tests.app.test_operations import metric
from tests.images import png_bytes, synthetic_film


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


def _multipart_in_two_halves(data: bytes, halfway: threading.Event, resume: threading.Event):
    """A multipart body whose second half is sent only when `resume` is set."""
    head = (
        b'--cut\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n'
        b"Content-Type: image/png\r\n\r\n"
    )
    body = head + data + b"\r\n--cut--\r\n"
    yield body[: len(body) // 2]
    halfway.set()
    resume.wait(30)
    yield body[len(body) // 2 :]


@pytest.mark.slow
def test_sigterm_finishes_the_request_in_flight(server, synthetic_xray):
    """The request is provably in progress (the server counts it) when the signal arrives."""
    base, proc = server
    halfway, resume, result = threading.Event(), threading.Event(), {}

    def upload() -> None:
        result["response"] = httpx.post(
            f"{base}/predict",
            content=_multipart_in_two_halves(synthetic_xray, halfway, resume),
            headers={"content-type": "multipart/form-data; boundary=cut"},
            timeout=30,
        )

    thread = threading.Thread(target=upload)
    thread.start()
    assert halfway.wait(10)
    deadline = time.monotonic() + 10
    while metric(httpx.get(f"{base}/metrics").text, "cxr_predictions_in_progress") != 1.0:
        assert time.monotonic() < deadline, "the server never counted the upload as in progress"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)  # the server is shutting down while the body is still half sent
    resume.set()
    thread.join(30)
    assert result["response"].status_code == 200
    # uvicorn shuts down cleanly, then re-raises the signal so the exit status reports it.
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    log = proc.stdout.read().decode(errors="replace")
    assert "Waiting for connections to close" in log or "Shutting down" in log
    assert "Application shutdown complete" in log


@pytest.mark.slow
def test_metrics_add_up_over_two_workers(shipped_bundle_dir, tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR, /metrics counts every worker's requests, whichever answers."""
    env = {
        "MODEL_DIR": str(shipped_bundle_dir),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "GRADCAM_ENABLED": "false",
    }
    proc, base, _ = start_uvicorn(env, workers=2, capture_output=True)
    try:
        film = png_bytes(synthetic_film(7))

        def workers_seen() -> set[str]:
            return {path.stem.rsplit("_", 1)[-1] for path in tmp_path.glob("histogram_*.db")}

        sent = 0
        # a new connection each time; the kernel picks the worker, so send until both answered
        while sent < 20 or (len(workers_seen()) < 2 and sent < 400):
            response = httpx.post(
                f"{base}/predict", params={"heatmap": "false"}, files={"file": ("x.png", film)}
            )
            if response.status_code == 503:  # the other worker is still loading its bundle
                time.sleep(0.1)
                continue
            assert response.status_code == 200
            sent += 1
        assert len(workers_seen()) == 2, f"one worker answered all {sent} requests"
        seen = [metric(httpx.get(f"{base}/metrics").text, "cxr_prediction_probability_count")]
        seen += [metric(httpx.get(f"{base}/metrics").text, "cxr_prediction_probability_count")]
        assert seen == [sent, sent]
    finally:
        proc.terminate()
        proc.wait(30)
