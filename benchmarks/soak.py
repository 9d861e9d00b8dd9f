"""Reliability under load: concurrency 32 for at least 60 s against a real uvicorn on loopback,
mixed traffic (valid uploads with and without heatmap, and bad uploads), counting 5xx and dropped
connections, and comparing server RSS after 500 and after 5,000 requests. Bounded: it stops at
--max-seconds whatever happens.

    python -m benchmarks.soak [--concurrency 32] [--min-seconds 60] [--requests 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import httpx
import psutil

from benchmarks.common import machine, sample_uploads, summarize_ms, write_result
from benchmarks.http_load import tree_rss_mb
from benchmarks.server import start_uvicorn
from engine import default_model_dir

BAD_UPLOADS = [b"", b"%PDF-1.7 not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64]


async def soak(base: str, proc: psutil.Process, args: argparse.Namespace) -> dict:
    uploads = list(sample_uploads().values())
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    dropped = 0
    dropped_kinds: dict[str, int] = {}
    sent = 0
    rss_500: float | None = None  # server RSS when request 500 is sent
    started = time.perf_counter()
    hard_stop = started + args.max_seconds
    limits = httpx.Limits(max_connections=args.concurrency)

    def done() -> bool:
        now = time.perf_counter()
        enough = now - started >= args.min_seconds and sent >= args.requests
        return enough or now >= hard_stop

    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def worker() -> None:
            nonlocal sent, dropped, rss_500
            while not done():
                n = sent
                sent += 1
                if n == 500:
                    rss_500 = tree_rss_mb(proc)
                if n % 10 == 9:
                    data, params = BAD_UPLOADS[n % len(BAD_UPLOADS)], {"heatmap": "false"}
                else:
                    data = uploads[n % len(uploads)]
                    params = {"heatmap": "true" if n % 10 == 0 else "false"}
                t0 = time.perf_counter()
                try:
                    response = await client.post(
                        "/predict", params=params, files={"file": ("x.jpg", data)}
                    )
                except httpx.TransportError as exc:
                    dropped += 1
                    kind = (
                        f"{type(exc).__name__} after {time.perf_counter() - t0:.2f} s "
                        f"(request {n}, {'bad upload' if n % 10 == 9 else params}): {exc!r}"
                    )
                    dropped_kinds[kind] = dropped_kinds.get(kind, 0) + 1
                    continue
                latencies.append(time.perf_counter() - t0)
                key = str(response.status_code)
                statuses[key] = statuses.get(key, 0) + 1

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    # At the end, not at request N: the run may stop at N (the time floor already passed), and
    # then no request N+1 would take the reading.
    rss_end = tree_rss_mb(proc)
    elapsed = time.perf_counter() - started
    server_errors = sum(v for k, v in statuses.items() if k.startswith("5"))
    return {
        "concurrency": args.concurrency,
        "seconds": round(elapsed, 1),
        "requests": sent,
        "statuses": statuses,
        "server_errors_5xx": server_errors,
        "dropped_connections": dropped,
        "dropped_by_kind": dropped_kinds,
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "latency": summarize_ms(latencies),
        "rss_mb_after_500": round(rss_500, 1) if rss_500 else None,
        "rss_mb_at_end": round(rss_end, 1),
        "rss_growth_mb": round(rss_end - rss_500, 1) if rss_500 else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(default_model_dir()))
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--min-seconds", type=float, default=60)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--max-seconds", type=float, default=240)
    parser.add_argument("--server-log", default=None, help="write the server's log here")
    args = parser.parse_args()
    log_path = Path(args.server_log) if args.server_log else None
    proc, base, ready_s = start_uvicorn({"MODEL_DIR": args.model}, log_path=log_path)
    try:
        result = asyncio.run(soak(base, psutil.Process(proc.pid), args))
        result["server_alive_after"] = proc.poll() is None
        result["health_after"] = httpx.get(f"{base}/health", timeout=5).status_code
    finally:
        proc.terminate()
        proc.wait(30)
    result = {"machine": machine(), "seconds_to_ready": round(ready_s, 2), **result}
    lat = result["latency"]
    md = (
        "| requests | seconds | req/s | statuses | 5xx | dropped | p50 ms | p99 ms | "
        "RSS after 500 | RSS at the end | growth |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"| {result['requests']} | {result['seconds']} | {result['requests_per_s']} | "
        f"{result['statuses']} | {result['server_errors_5xx']} | {result['dropped_connections']} | "
        f"{lat['median_ms']:.0f} | {lat['p99_ms']:.0f} | {result['rss_mb_after_500']} MB | "
        f"{result['rss_mb_at_end']} MB | {result['rss_growth_mb']} MB |\n"
    )
    write_result("soak", result, md)


if __name__ == "__main__":
    main()
