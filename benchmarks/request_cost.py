"""What a request costs beyond its networks: this checkout's service against another commit's,
in the same run, with the networks' own time measured here on one thread.

    python -m benchmarks.request_cost --rev 0dce148 [--rounds 6] [--seconds 3]

Rows (issue "Speed, decided"): p50 `/predict` of the bench JPEG without and with heatmap, the
adult CR DICOM with heatmap (its answer carries `film_png`), each in alternating rounds of one
client; 16 concurrent clients without heatmap, one phase per side; ready time and RSS; whether
the answers are the same (probabilities to the last digit, maps and pictures); and where the time
went, stage by stage, from each answer's `timings_ms` and `Server-Timing`.

Writes benchmarks/results/request_cost.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import time
from dataclasses import dataclass

import cv2
import httpx
import numpy as np
import psutil

from benchmarks.common import (
    REPO,
    checkout_of,
    head_commit,
    machine,
    processor_line,
    sample_uploads,
    time_calls,
    write_result,
)
from benchmarks.http_load import (
    bench_upload,
    load,
    measured_phase,
    server_timing_ms,
    tree_rss_mb,
)
from benchmarks.server import start_uvicorn, stop_server
from engine import Predictor, default_model_dir
from imaging import decode_upload, preprocess_grayscale


@dataclass(frozen=True)
class Row:
    """A one-client row: what it sends, and its bound as a multiple of one network's time."""

    upload: str  # bench_upload's kind
    heatmap: bool
    graph: str  # the key of network_times() the bound multiplies
    factor: float
    label: str


# The rows and bounds.
ROWS = {
    "jpeg": Row("jpeg", False, "served_graph_ms", 1.6, "bench JPEG, no heatmap"),
    "jpeg_heatmap": Row("jpeg", True, "gradcam_graph_ms", 1.6, "bench JPEG, heatmap"),
    "adult_cr_heatmap": Row(
        "adult-cr", True, "gradcam_graph_ms", 2.5, "adult CR DICOM, heatmap and film_png"
    ),
}
THROUGHPUT_SHARE = 0.6  # 16 clients: at least this share of cores x 1000 / served graph ms
ENGINE_STAGES = ("decode", "preprocess", "inference", "guard", "overlay", "encode")


def network_times(repeats: int = 200) -> dict[str, float]:
    """Median ms of the served graph and of the Grad-CAM graph, one image, one thread, on the
    bench JPEG's tensor (the networks alone: no decode, no checks, no encoding)."""
    predictor = Predictor.from_directory(default_model_dir(), onnx_threads=1)
    params = predictor.bundle.preprocessing
    upload, _ = bench_upload()
    tensor = preprocess_grayscale(decode_upload(upload, params)[1], params)

    def median_ms(call) -> float:
        return round(statistics.median(time_calls(call, repeats, warmup=10)) * 1000, 3)

    return {
        "served_graph_ms": median_ms(lambda: predictor.bundle.run(tensor[np.newaxis], 1)),
        "gradcam_graph_ms": median_ms(lambda: predictor.gradcam.run(tensor, 1)),
    }


def stage_samples(
    bases: dict[str, str], upload: bytes, heatmap: bool, requests: int
) -> dict[str, dict[str, float]]:
    """Per side, the median ms per stage over `requests` sequential answers, the sides taking
    turns request by request (so both see the same moments of a host whose speed drifts): the
    engine's own stages, then what the server spent around them (HTTP, form, JSON, middleware)
    and what the client and loopback added."""
    per_stage: dict[str, dict[str, list[float]]] = {side: {} for side in bases}
    clients = {side: httpx.Client(base_url=base, timeout=60) for side, base in bases.items()}
    try:
        for i in range(requests):
            for side in sorted(bases, reverse=i % 2 == 1):
                stages = per_stage[side]
                started = time.perf_counter()
                response = clients[side].post(
                    "/predict",
                    params={"heatmap": str(heatmap).lower()},
                    files={"file": ("upload", upload)},
                )
                client_ms = (time.perf_counter() - started) * 1000
                response.raise_for_status()
                timings = response.json()["timings_ms"]
                server_ms = server_timing_ms(response.headers.get("server-timing", "")) or 0.0
                for stage in ENGINE_STAGES:
                    if stage in timings:
                        stages.setdefault(stage, []).append(timings[stage])
                stages.setdefault("engine total", []).append(timings["total"])
                stages.setdefault("server, around the engine", []).append(
                    server_ms - timings["total"]
                )
                stages.setdefault("client and loopback", []).append(client_ms - server_ms)
                stages.setdefault("as the client sees it", []).append(client_ms)
    finally:
        for client in clients.values():
            client.close()
    return {
        side: {stage: round(statistics.median(v), 2) for stage, v in stages.items()}
        for side, stages in per_stage.items()
    }


def answers(base: str, uploads: dict[str, bytes]) -> dict[str, dict]:
    """Each upload's answer with heatmap, as the comparison needs it."""
    out = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        for name, data in uploads.items():
            body = client.post("/predict", files={"file": (name, data)}).json()
            out[name] = {
                key: body.get(key)
                for key in ("probability", "label", "heatmap_grid", "heatmap", "film_png")
            }
    return out


def decoded(picture: str | None) -> np.ndarray | None:
    if picture is None:
        return None
    data = np.frombuffer(base64.b64decode(picture), np.uint8)
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def compare(before: dict[str, dict], after: dict[str, dict]) -> dict:
    """Probabilities and labels equal to the last digit; the largest difference of a map cell;
    the pictures equal pixel for pixel once decoded (PNG is lossless, so the encoder may differ)."""
    grid_diff, same_pictures, same_probabilities = 0.0, True, True
    for name, old in before.items():
        new = after[name]
        same_probabilities &= old["probability"] == new["probability"]
        same_probabilities &= old["label"] == new["label"]
        grid_diff = max(
            grid_diff,
            float(np.abs(np.asarray(old["heatmap_grid"]) - np.asarray(new["heatmap_grid"])).max()),
        )
        for key in ("heatmap", "film_png"):
            a, b = decoded(old[key]), decoded(new[key])
            same_pictures &= (a is None) == (b is None) and (a is None or np.array_equal(a, b))
    return {
        "uploads": len(before),
        "probabilities_and_labels_identical": bool(same_probabilities),
        "heatmap_grid_max_abs_diff": grid_diff,
        "pictures_identical_decoded": bool(same_pictures),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rev", required=True, help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3.0, help="per round and row")
    parser.add_argument("--load-seconds", type=float, default=10.0, help="16 clients, per side")
    parser.add_argument("--stage-requests", type=int, default=40)
    args = parser.parse_args()
    head = head_commit()
    uploads = {kind: bench_upload(kind) for kind in ("jpeg", "adult-cr")}
    networks = network_times()
    print(f"networks, one thread: {networks}", flush=True)
    compared_uploads = {**sample_uploads(), "RG1_UNCR.dcm": uploads["adult-cr"][0]}

    with checkout_of(args.rev, "cxr-request-cost-") as (scratch, checkout):
        sides: dict[str, dict] = {"before": {}, "after": {}}
        servers = {}
        try:
            for side, cwd in (("before", checkout), ("after", REPO)):
                env = {
                    "DATABASE_URL": f"sqlite:///{scratch / f'{side}.sqlite3'}",
                    "RECORDS_SPOOL_DIR": str(scratch / f"{side}-spool"),
                }
                servers[side] = start_uvicorn(env, cwd=cwd)
                sides[side]["seconds_to_ready"] = round(servers[side][2], 2)
            time.sleep(1.0)
            for side, (proc, _, _) in servers.items():
                sides[side]["rss_idle_mb"] = round(tree_rss_mb(psutil.Process(proc.pid)), 1)
            rounds: dict[str, dict[str, list[float]]] = {s: {} for s in sides}
            for r in range(args.rounds):
                order = ("before", "after") if r % 2 == 0 else ("after", "before")
                for row, spec in ROWS.items():
                    upload = uploads[spec.upload][0]
                    for side in order:
                        phase = asyncio.run(
                            load(servers[side][1], upload, spec.heatmap, 1, args.seconds, 10_000)
                        )
                        rounds[side].setdefault(row, []).append(phase["median_ms"])
                        server = phase["server_by_status"].get("200", {}).get("median_ms")
                        rounds[side].setdefault(f"{row}_server", []).append(server)
                print(f"round {r + 1}/{args.rounds}", flush=True)
            for side in ("before", "after"):
                proc, base, _ = servers[side]
                ps = psutil.Process(proc.pid)
                sides[side]["p50_ms"] = {k: statistics.median(v) for k, v in rounds[side].items()}
                phase = measured_phase(
                    ps, load(base, uploads["jpeg"][0], False, 16, args.load_seconds, 100_000)
                )
                sides[side]["concurrency_16"] = {
                    "answers_per_s": phase["requests_per_s"],
                    "statuses": phase["statuses"],
                    "server_cpu_ms_per_answer": phase["server_cpu_ms_per_response"],
                    "client_cpu_ms_per_request": phase["client_cpu_ms_per_request"],
                }
                sides[side]["rss_after_load_mb"] = round(tree_rss_mb(ps), 1)
                sides[side]["answers"] = answers(base, compared_uploads)
            bases = {side: server[1] for side, server in servers.items()}
            for side in sides:
                sides[side]["stages_ms"] = {}
            for row, spec in ROWS.items():
                upload = uploads[spec.upload][0]
                sampled = stage_samples(bases, upload, spec.heatmap, args.stage_requests)
                for side, stages in sampled.items():
                    sides[side]["stages_ms"][row] = stages
        finally:
            for proc, _, _ in servers.values():
                stop_server(proc)

    sameness = compare(sides["before"].pop("answers"), sides["after"].pop("answers"))
    cores = len(os.sched_getaffinity(0))
    bound = {row: networks[spec.graph] * spec.factor for row, spec in ROWS.items()}
    needed_rate = THROUGHPUT_SHARE * cores * 1000 / networks["served_graph_ms"]
    result = {
        "machine": machine(),
        "before": args.rev,
        "after": head,
        "uploads": {kind: described for kind, (_, described) in uploads.items()},
        "rounds": args.rounds,
        "load_seconds": args.load_seconds,
        "networks_one_thread": networks,
        "bounds_ms": bound,
        "needed_answers_per_s_at_16": round(needed_rate, 1),
        "sides": sides,
        "same_answers": sameness,
    }
    write_result("request_cost", result, markdown(result, cores))


def markdown(result: dict, cores: int) -> str:
    networks, sides, bound = result["networks_one_thread"], result["sides"], result["bounds_ms"]
    before, after = sides["before"], sides["after"]
    lines = [
        f"This checkout ({result['after']}) against {result['before']}, both served at once in "
        f"this run, each its own code on the shipped model with its defaults (records into "
        f"SQLite); {result['rounds']} alternating rounds of one client per row. "
        f"{processor_line(result['machine'])}; the client shares the {cores} cores.",
        "",
        f"The networks alone, one image on one thread, in this run: served graph "
        f"**{networks['served_graph_ms']:.2f} ms**, Grad-CAM graph "
        f"**{networks['gradcam_graph_ms']:.2f} ms**.",
        "",
        "| request | bound (ms) | before p50 client / server (ms) | after p50 client / server "
        "(ms) | after / networks (client) | after / networks (server) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row, spec in ROWS.items():
        graph = networks[spec.graph]
        b, a = before["p50_ms"], after["p50_ms"]
        lines.append(
            f"| {spec.label} | {bound[row]:.1f} ({spec.factor}x) | "
            f"{b[row]:.1f} / {b[row + '_server']:.1f} | "
            f"{a[row]:.1f} / {a[row + '_server']:.1f} | {a[row] / graph:.2f}x | "
            f"{a[row + '_server'] / graph:.2f}x |"
        )
    lines += [
        "",
        f"16 concurrent clients, no heatmap, one {result['load_seconds']:g}-second phase per "
        f"side (the bound: "
        f"{THROUGHPUT_SHARE} x {cores} cores x 1000 / served graph = "
        f"{result['needed_answers_per_s_at_16']} answers/s). A replica alone could reach at most "
        f"cores x 1000 / server CPU per answer; here the client takes its share of the same cores.",
        "",
        "| side | answers/s | statuses | server CPU ms per answer | client CPU ms per request | "
        "cores x 1000 / server CPU |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for side in ("before", "after"):
        c16 = sides[side]["concurrency_16"]
        alone = cores * 1000 / c16["server_cpu_ms_per_answer"]
        lines.append(
            f"| {side} | {c16['answers_per_s']} | {c16['statuses']} | "
            f"{c16['server_cpu_ms_per_answer']} | {c16['client_cpu_ms_per_request']} | "
            f"{alone:.0f} |"
        )
    same = result["same_answers"]
    lines += [
        "",
        "| side | ready (s) | RSS idle (MB) | RSS after load (MB) |",
        "| --- | --- | --- | --- |",
        *(
            f"| {side} | {sides[side]['seconds_to_ready']} | {sides[side]['rss_idle_mb']} | "
            f"{sides[side]['rss_after_load_mb']} |"
            for side in ("before", "after")
        ),
        "",
        f"Same answers on {same['uploads']} uploads (the samples, the bench JPEGs and the adult "
        f"CR): probabilities and labels identical: "
        f"**{same['probabilities_and_labels_identical']}**; "
        f"largest map cell difference {same['heatmap_grid_max_abs_diff']:.2e}; overlays and films "
        f"identical pixel for pixel once decoded: **{same['pictures_identical_decoded']}**.",
        "",
        "Where the time went (median ms of sequential answers, the two sides taking turns; engine "
        "stages from each answer's `timings_ms`, the server's from `Server-Timing`):",
        "",
    ]
    for row in ROWS:
        stages = list(dict.fromkeys([*before["stages_ms"][row], *after["stages_ms"][row]]))
        lines += [
            f"| {row} | before | after |",
            "| --- | --- | --- |",
            *(
                f"| {stage} | {before['stages_ms'][row].get(stage, '-')} | "
                f"{after['stages_ms'][row].get(stage, '-')} |"
                for stage in stages
            ),
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
