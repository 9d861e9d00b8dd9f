"""End to end over HTTP against a real uvicorn on loopback: latency, throughput, errors, memory,
and seconds from process start to a ready /health. Every phase is bounded in time.

    python -m benchmarks.http_load [--seconds 10] [--workers 1] [--concurrency 1 4 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

import httpx
import psutil

from benchmarks.common import machine, sample_uploads, summarize_ms, write_result
from benchmarks.server import start_uvicorn, stop_server
from engine import default_model_dir


def _pair(summary: dict | None) -> str:
    if not summary:
        return "-"
    return f"{summary['median_ms']:.1f} / {summary['p99_ms']:.1f}"


def tree_rss_mb(proc: psutil.Process) -> float:
    procs = [proc, *proc.children(recursive=True)]
    return sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20


def tree_cpu_seconds(proc: psutil.Process) -> float:
    """User and system CPU time of the server and its worker processes so far."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def measured_phase(ps: psutil.Process, run) -> dict:
    """A load phase, with the CPU time the server and this client spent on each response: the
    client shares the machine's cores, so the rate a replica reaches alone is bounded by the
    server's CPU time per answer, not by the rate measured here."""
    server_before, client_before = tree_cpu_seconds(ps), time.process_time()
    phase = asyncio.run(run)
    responses = max(1, phase["requests"])
    server_ms = (tree_cpu_seconds(ps) - server_before) * 1000 / responses
    client_ms = (time.process_time() - client_before) * 1000 / responses
    return {
        **phase,
        "server_cpu_ms_per_response": round(server_ms, 1),
        "client_cpu_ms_per_request": round(client_ms, 1),
    }


async def load(
    base: str, data: bytes, heatmap: bool, concurrency: int, seconds: float, max_requests: int
) -> dict:
    latencies: list[float] = []
    by_status: dict[str, list[float]] = {}
    server_by_status: dict[str, list[float]] = {}
    statuses: dict[str, int] = {}
    transport_errors = 0
    params = {"heatmap": "true" if heatmap else "false"}
    deadline = time.perf_counter() + seconds
    sent = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # The multipart body is encoded once: the client shares the cores with the server, and
    # re-encoding 200 KB per request would be measured as the server's time.
    form = httpx.Request("POST", base, files={"file": ("xray.jpg", data, "image/jpeg")})
    body, headers = form.read(), {"content-type": form.headers["content-type"]}
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def worker() -> None:
            nonlocal sent, transport_errors
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                t0 = time.perf_counter()
                try:
                    response = await client.post(
                        "/predict", params=params, content=body, headers=headers
                    )
                    statuses[str(response.status_code)] = (
                        statuses.get(str(response.status_code), 0) + 1
                    )
                except httpx.TransportError:
                    transport_errors += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                by_status.setdefault(str(response.status_code), []).append(latencies[-1])
                server_ms = server_timing_ms(response.headers.get("server-timing", ""))
                if server_ms is not None:
                    server_by_status.setdefault(str(response.status_code), []).append(
                        server_ms / 1000
                    )

        t_start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t_start
    ok = statuses.get("200", 0)
    return {
        "heatmap": heatmap,
        "concurrency": concurrency,
        "requests": len(latencies) + transport_errors,
        "ok": ok,
        "errors": len(latencies) + transport_errors - ok,
        "statuses": statuses,
        "transport_errors": transport_errors,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(ok / elapsed, 1),
        **{k: v for k, v in summarize_ms(latencies).items() if k != "n"},
        "by_status": {status: summarize_ms(values) for status, values in by_status.items()},
        "server_by_status": {s: summarize_ms(v) for s, v in server_by_status.items()},
    }


def bench_upload(kind: str = "jpeg") -> tuple[bytes, str]:
    """The upload the HTTP benchmarks send, and how to describe it: "jpeg", the 1414x1060 JPEG
    made from the largest sample, or "adult-cr", pydicom-data's RG1_UNCR.dcm."""
    if kind == "adult-cr":
        from pydicom.data import get_testdata_file

        upload = Path(get_testdata_file("RG1_UNCR.dcm")).read_bytes()
        return upload, f"RG1_UNCR.dcm, adult CR DICOM 1841x1955 ({len(upload)} bytes)"
    upload = sample_uploads()["synthetic_1.5MP.jpg"]
    return upload, f"1414x1060 JPEG ({len(upload)} bytes)"


def server_timing_ms(header: str) -> float | None:
    """The `dur` of the service's `Server-Timing: app;dur=12.3` header."""
    for part in header.split(";"):
        if part.strip().startswith("dur="):
            return float(part.strip()[4:])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(default_model_dir()))
    parser.add_argument("--seconds", type=float, default=10.0, help="per load phase")
    parser.add_argument("--max-requests", type=int, default=5000, help="per load phase")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--onnx-threads", default="1")
    parser.add_argument("--name", default="http_load")
    parser.add_argument(
        "--no-gradcam", action="store_true", help="serve with GRADCAM_ENABLED=false (no heatmaps)"
    )
    parser.add_argument(
        "--env", nargs="*", default=[], help="extra settings for the server, NAME=VALUE"
    )
    parser.add_argument(
        "--heatmap", choices=("both", "on", "off"), default="both", help="which request kinds"
    )
    parser.add_argument(
        "--upload",
        choices=("jpeg", "adult-cr"),
        default="jpeg",
        help="jpeg: the 1414x1060 JPEG made from the largest sample; adult-cr: pydicom-data's "
        "RG1_UNCR.dcm (1841x1955, 15-bit MONOCHROME1; its answer carries film_png too)",
    )
    args = parser.parse_args()

    upload, described = bench_upload(args.upload)
    env = {"MODEL_DIR": args.model, "ONNX_THREADS": args.onnx_threads}
    env.update(item.split("=", 1) for item in args.env)
    if args.no_gradcam:
        env["GRADCAM_ENABLED"] = "false"
    kinds = {"both": (False, True), "on": (True,), "off": (False,)}[args.heatmap]
    proc, base, ready_s = start_uvicorn(env, workers=args.workers)
    ps = psutil.Process(proc.pid)
    try:
        time.sleep(1.0)
        rss_idle = tree_rss_mb(ps)
        phases = []
        for heatmap in (False,) if args.no_gradcam else kinds:
            for concurrency in args.concurrency:
                phases.append(
                    measured_phase(
                        ps,
                        load(base, upload, heatmap, concurrency, args.seconds, args.max_requests),
                    )
                )
        rss_after = tree_rss_mb(ps)
    finally:
        stop_server(proc)

    result = {
        "machine": machine(),
        "upload": described,
        "uvicorn_workers": args.workers,
        "gradcam_enabled": not args.no_gradcam,
        "onnx_threads": int(args.onnx_threads),
        "server_settings": {k: v for k, v in env.items() if k != "MODEL_DIR"},
        "seconds_to_ready_health": round(ready_s, 2),
        "rss_idle_mb": round(rss_idle, 1),
        "rss_after_load_mb": round(rss_after, 1),
        "phases": phases,
    }
    rows = [
        f"uvicorn workers: {args.workers}; Grad-CAM {'off' if args.no_gradcam else 'on'}; "
        f"settings {result['server_settings']}; upload: {result['upload']}; client and server "
        f"share this {os.cpu_count()}-core machine.",
        "",
        "Latency as the client sees it, and (server) as the service's `Server-Timing` header "
        "reports it: from the request's arrival at the application to its answer, without the "
        "client's own queueing on the shared cores. CPU ms: the server's (all its processes) and "
        "this client's CPU time per response; the client's share of the cores is not the "
        "server's to use here.",
        "",
        "| heatmap | concurrency | requests | 200 | 503 | other | req/s (200) | 200: p50 ms | "
        "200: p99 ms | 503: p50 ms | 503: p99 ms | 200 (server): p50 / p99 ms | "
        "503 (server): p50 / p99 ms | CPU ms: server / client |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in phases:
        ok, shed = p["by_status"].get("200", {}), p["by_status"].get("503", {})
        server = p["server_by_status"]
        other = p["requests"] - ok.get("n", 0) - shed.get("n", 0)
        rows.append(
            f"| {p['heatmap']} | {p['concurrency']} | {p['requests']} | {ok.get('n', 0)} | "
            f"{shed.get('n', 0)} | {other} | {p['requests_per_s']} | "
            f"{ok.get('median_ms', float('nan')):.1f} | {ok.get('p99_ms', float('nan')):.1f} | "
            f"{shed.get('median_ms', float('nan')):.1f} | {shed.get('p99_ms', float('nan')):.1f} | "
            f"{_pair(server.get('200'))} | {_pair(server.get('503'))} | "
            f"{p['server_cpu_ms_per_response']} / {p['client_cpu_ms_per_request']} |"
        )
    rows += [
        "",
        f"Start to ready `/health`: {ready_s:.2f} s. RSS (all server processes): idle "
        f"{rss_idle:.0f} MB, after load {rss_after:.0f} MB.",
    ]
    write_result(args.name, result, "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
