"""Start a real uvicorn process on a free loopback port and wait until /health says ready.

Used by the HTTP benchmarks and by the tests that need a real server process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_uvicorn(
    env_extra: dict[str, str],
    workers: int = 1,
    timeout: float = 120.0,
    capture_output: bool = False,
    log_path: Path | None = None,
    cwd: Path = REPO,
) -> tuple[subprocess.Popen, str, float]:
    """(process, base URL, seconds from start to a 200 from /health); kills it on timeout.
    `cwd` is where it runs: another checkout there serves that checkout's code (the current
    directory comes first on the import path).

    The server's output goes to a pipe (`capture_output`), to `log_path`, or nowhere.
    """
    port = free_port()
    env = {**os.environ, "LOG_LEVEL": "WARNING", **env_extra}
    # The same launcher as `make serve` and the image (app/serve.py: keep-alive 75 s, TCP socket).
    cmd = [
        sys.executable,
        "-m",
        "app",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    output = subprocess.PIPE if capture_output else subprocess.DEVNULL
    if log_path is not None:
        output = open(log_path, "w")  # noqa: SIM115 - the child process owns it until it exits
        env["LOG_LEVEL"] = "INFO"
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    if health_ready(base, timeout, running=lambda: proc.poll() is None):
        return proc, base, time.perf_counter() - started
    if proc.poll() is not None:
        log = proc.stdout.read().decode(errors="replace")[-2000:] if capture_output else ""
        raise RuntimeError(f"uvicorn exited with status {proc.returncode} {log}")
    proc.kill()
    raise RuntimeError(f"uvicorn did not become ready within {timeout:.0f} s")


def health_ready(base: str, timeout: float, running: Callable[[], bool] = lambda: True) -> bool:
    """Poll `base`/health until it answers 200 (True), or until `running()` turns false or
    `timeout` seconds pass (False)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        if not running():
            return False
        time.sleep(0.05)
    return False


def stop_server(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
