"""This checkout's service against another commit's, in the same run: alternating rounds of one
client, without and with heatmap, on the bench's JPEG. Each side serves its own shipped model
with its own defaults (so "before" is exactly what that commit shipped).

    python -m benchmarks.paired_code --rev 8166a86 [--rounds 8] [--seconds 3]

Writes benchmarks/results/paired_code.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

from benchmarks.common import checkout_of, head_commit, machine, processor_line, write_result
from benchmarks.http_load import bench_upload, load
from benchmarks.server import start_uvicorn, stop_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rev", required=True, help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    upload, described = bench_upload()
    head = head_commit()
    with checkout_of(args.rev, "cxr-paired-") as (scratch, checkout):
        env = {"DATABASE_URL": f"sqlite:///{scratch / 'records.sqlite3'}",
               "RECORDS_SPOOL_DIR": str(scratch / "spool")}  # fmt: skip
        servers = {}
        try:
            servers["before"] = start_uvicorn(env, cwd=checkout)
            servers["after"] = start_uvicorn(env)
            samples: dict[str, list[float]] = {}
            for r in range(args.rounds):
                order = ("before", "after") if r % 2 == 0 else ("after", "before")
                for heatmap in (False, True):
                    for side in order:
                        phase = asyncio.run(
                            load(servers[side][1], upload, heatmap, 1, args.seconds, 10_000)
                        )
                        samples.setdefault(f"{side}_{heatmap}", []).append(phase["median_ms"])
                print(f"round {r + 1}/{args.rounds}", flush=True)
        finally:
            for proc, _, _ in servers.values():
                stop_server(proc)
    result = {
        "machine": machine(),
        "before": args.rev,
        "after": head,
        "upload": described,
        "rounds": args.rounds,
        "p50_ms": {k: statistics.median(v) for k, v in samples.items()},
        "ratio_after_before": {
            kind: statistics.median(
                a / b for a, b in zip(samples[f"after_{h}"], samples[f"before_{h}"], strict=True)
            )
            for kind, h in (("no_heatmap", False), ("heatmap", True))
        },
        "rounds_ms": samples,
    }
    p50, ratio = result["p50_ms"], result["ratio_after_before"]
    md = [
        f"This checkout ({head}) against {args.rev}, each serving its own shipped model with its "
        f"own defaults; {args.rounds} alternating rounds of one client, {described}. "
        f"{processor_line(result['machine'])}.",
        "",
        "| request | before p50 (ms) | after p50 (ms) | after / before (median of rounds) |",
        "| --- | --- | --- | --- |",
        f"| no heatmap | {p50['before_False']:.1f} | {p50['after_False']:.1f} | "
        f"{ratio['no_heatmap']:.3f} |",
        f"| heatmap | {p50['before_True']:.1f} | {p50['after_True']:.1f} | "
        f"{ratio['heatmap']:.3f} |",
        "",
    ]
    write_result("paired_code", result, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
