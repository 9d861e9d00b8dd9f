"""Is the shipped model slower than the previous one? Both served at once on today's code, one
request at a time, in alternating rounds (ABBA order), so a drift of the machine's speed during
the run (it moves by up to 2x between days on this shared host) falls on both alike.

    python -m benchmarks.paired_latency [--rounds 8] [--seconds 3]

Reported per model and request kind: the p50 over all rounds (client and server side) and the
median over rounds of the per-round ratio shipped / previous.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

from benchmarks.common import machine, write_result
from benchmarks.http_load import bench_upload, load
from benchmarks.previous import previous_bundle
from benchmarks.server import start_uvicorn, stop_server
from engine import ModelCard, default_model_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="per model, kind and round")
    parser.add_argument("--name", default="paired_latency")
    args = parser.parse_args()
    previous = previous_bundle()
    if previous is None:
        raise SystemExit("the previous model needs a git clone (benchmarks/previous.py)")
    models = {"shipped": default_model_dir(), "previous": previous}
    versions = {k: ModelCard.read(v).version for k, v in models.items()}
    upload, _ = bench_upload()
    servers = {k: start_uvicorn({"MODEL_DIR": str(v)}) for k, v in models.items()}
    rounds: list[dict] = []
    try:
        for r in range(args.rounds):
            order = ("shipped", "previous") if r % 2 == 0 else ("previous", "shipped")
            row: dict = {"order": order}
            for heatmap in (False, True):
                for model in order:
                    base = servers[model][1]
                    phase = asyncio.run(load(base, upload, heatmap, 1, args.seconds, 5000))
                    row[f"{model}_{heatmap}"] = {
                        "median_ms": phase["median_ms"],
                        "server_median_ms": phase["server_by_status"]["200"]["median_ms"],
                        "n": phase["ok"],
                    }
            rounds.append(row)
            print(f"round {r + 1}/{args.rounds} done", flush=True)
    finally:
        for proc, _, _ in servers.values():
            stop_server(proc)

    summary = {}
    for heatmap in (False, True):
        ratios = [
            x[f"shipped_{heatmap}"]["median_ms"] / x[f"previous_{heatmap}"]["median_ms"]
            for x in rounds
        ]
        summary[str(heatmap)] = {
            model: {
                "median_of_round_p50_ms": statistics.median(
                    x[f"{model}_{heatmap}"]["median_ms"] for x in rounds
                ),
                "median_of_round_server_p50_ms": statistics.median(
                    x[f"{model}_{heatmap}"]["server_median_ms"] for x in rounds
                ),
                "requests": sum(x[f"{model}_{heatmap}"]["n"] for x in rounds),
            }
            for model in models
        } | {"ratio_median": statistics.median(ratios), "ratio_range": [min(ratios), max(ratios)]}
    result = {
        "machine": machine(),
        "versions": versions,
        "rounds": args.rounds,
        "seconds_per_phase": args.seconds,
        "summary": summary,
        "per_round": rounds,
    }
    rows = [
        f"Shipped {versions['shipped']} against previous {versions['previous']}, both served at "
        f"once on today's code, concurrency 1, {args.rounds} alternating rounds of "
        f"{args.seconds:g} s per model and kind; upload as in the HTTP benchmark.",
        "",
        "| heatmap | shipped p50 ms (server) | previous p50 ms (server) | shipped / previous, "
        "median of rounds (range) |",
        "| --- | --- | --- | --- |",
    ]
    for heatmap in (False, True):
        s = summary[str(heatmap)]
        low, high = s["ratio_range"]
        rows.append(
            f"| {heatmap} | {s['shipped']['median_of_round_p50_ms']:.1f} "
            f"({s['shipped']['median_of_round_server_p50_ms']:.1f}) | "
            f"{s['previous']['median_of_round_p50_ms']:.1f} "
            f"({s['previous']['median_of_round_server_p50_ms']:.1f}) | "
            f"{s['ratio_median']:.3f} ({low:.3f}-{high:.3f}) |"
        )
    rows += ["", "p50 of each round's requests, then the median over rounds."]
    write_result(args.name, result, "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
