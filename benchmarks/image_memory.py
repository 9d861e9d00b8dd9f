"""The service in its container image: the image's size, seconds from `podman run` to a ready
/health, and the container's RSS idle and after heatmap requests (the JPEG the HTTP benchmarks
send, a burst of 16 at once, and the adult CR DICOM).

    python -m benchmarks.image_memory [--requests 100] [--no-build]

Needs Podman and the stand-in base image `../shared/tools/compose-smoke` builds once per machine
(`.ci/run` runs it); builds the Dockerfile's runtime target as `cxr-pneumonia:bench` and runs it
read-only with a /tmp tmpfs, as docker-compose.yml does.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import time

import psutil

from benchmarks.common import machine, write_result
from benchmarks.http_load import bench_upload, load, tree_rss_mb
from benchmarks.server import REPO, free_port, health_ready

IMAGE = "cxr-pneumonia:bench"


def podman(*args: str, capture: bool = True) -> str:
    done = subprocess.run(["podman", *args], check=True, capture_output=capture, text=True)
    return done.stdout.strip() if capture else ""


def one_at_a_time(base: str, upload: bytes, count: int) -> dict:
    """`count` heatmap requests, each sent when the last is answered (the HTTP benchmark's load
    at concurrency 1, bounded by the count rather than by time)."""
    return asyncio.run(load(base, upload, True, 1, 600.0, count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100, help="JPEG heatmap requests")
    parser.add_argument("--no-build", action="store_true", help=f"use the {IMAGE} there is")
    args = parser.parse_args()
    if shutil.which("podman") is None:
        raise SystemExit("image_memory: Podman is not installed (compose-smoke installs it)")
    if not args.no_build:
        podman("build", "--target", "runtime", "-t", IMAGE, str(REPO), capture=False)
    size_mb = int(podman("image", "inspect", "-f", "{{.Size}}", IMAGE)) / 1e6
    port = free_port()
    started = time.perf_counter()
    container = podman(
        "run", "-d", "--rm", "--read-only", "--tmpfs", "/tmp", "-p", f"127.0.0.1:{port}:8000",
        IMAGE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        if not health_ready(base, 120.0):
            raise RuntimeError("the container was not ready within 120 s")
        ready_s = time.perf_counter() - started
        server = psutil.Process(int(podman("inspect", "-f", "{{.State.Pid}}", container)))
        time.sleep(1.0)
        rss_idle = tree_rss_mb(server)
        jpeg, jpeg_described = bench_upload("jpeg")
        cr, cr_described = bench_upload("adult-cr")
        single = one_at_a_time(base, jpeg, args.requests)
        burst = asyncio.run(load(base, jpeg, True, 16, 5.0, 16 * 8))
        adult = one_at_a_time(base, cr, 10)
        rss_after = tree_rss_mb(server)
    finally:
        podman("stop", "-t", "20", container)
    result = {
        "machine": machine(),
        "image": IMAGE,
        "image_size_mb": round(size_mb, 1),
        "seconds_to_ready_health": round(ready_s, 2),
        "rss_idle_mib": round(rss_idle, 1),
        "rss_after_load_mib": round(rss_after, 1),
        "requests": {
            jpeg_described: {"sent": single["requests"], "ok": single["ok"]},
            f"{jpeg_described}, 16 at once": {"sent": burst["requests"], "ok": burst["ok"]},
            cr_described: {"sent": adult["requests"], "ok": adult["ok"]},
        },
    }
    rows = [
        "The runtime image run as docker-compose.yml runs it (read-only, /tmp in memory, one "
        "worker, default settings). RSS: every process of the container, from the host.",
        "",
        "| image | size MB | `podman run` to ready /health, s | RSS idle MiB | "
        "RSS after the requests below MiB |",
        "| --- | --- | --- | --- | --- |",
        f"| {IMAGE} | {size_mb:.0f} | {ready_s:.2f} | {rss_idle:.0f} | {rss_after:.0f} |",
        "",
        "| heatmap requests | sent | 200 |",
        "| --- | --- | --- |",
        *(f"| {name} | {n['sent']} | {n['ok']} |" for name, n in result["requests"].items()),
    ]
    write_result("image_memory", result, "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
