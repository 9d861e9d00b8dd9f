"""Run every benchmark in turn and collect their Markdown into benchmarks/results/README.md.

python -m benchmarks.run        (make bench)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from benchmarks.common import RESULTS, machine, processor_line
from benchmarks.previous import previous_bundle

# The code the paired benchmark compares this checkout with (a commit, tag or HEAD~N).
BASELINE = os.environ.get("BENCH_BASELINE", "HEAD~1")


def scripts() -> list[tuple[str, str, list[str]]]:
    previous = previous_bundle()
    runs = [
        (
            "Stage timings (shipped and previous model), ONNX vs Keras, FLOPs, DICOM decode",
            "benchmarks.stages",
            [],
        ),
        (
            "Grad-CAM graph against the reference, every dev-test film",
            "benchmarks.gradcam_parity",
            [],
        ),
        ("HTTP end to end, 1 uvicorn worker", "benchmarks.http_load", []),
        (
            "HTTP end to end, GRADCAM_BACKEND=keras (the same model, Grad-CAM on TensorFlow as "
            "served before the Grad-CAM graph)",
            "benchmarks.http_load",
            ["--env", "GRADCAM_BACKEND=keras", "--name", "http_load_keras_gradcam"],
        ),
    ]
    if previous:
        runs.append(
            (
                "HTTP end to end, 1 uvicorn worker, the previous model (same run)",
                "benchmarks.http_load",
                ["--model", str(previous), "--name", "http_load_previous"],
            )
        )
        runs.append(
            (
                "Shipped against previous model, both served at once, alternating rounds",
                "benchmarks.paired_latency",
                [],
            )
        )
    runs += [
        (
            "HTTP end to end, METRICS_ENABLED=false (the cost of metrics)",
            "benchmarks.http_load",
            [
                "--env",
                "METRICS_ENABLED=false",
                "--heatmap",
                "off",
                "--name",
                "http_load_no_metrics",
            ],
        ),
        (
            "HTTP end to end, ONNX_THREADS=2 and TF_THREADS=2 (every request may use both "
            "cores, even when several run at once)",
            "benchmarks.http_load",
            [
                "--onnx-threads",
                "2",
                "--env",
                "TF_THREADS=2",
                "--concurrency",
                "1",
                "4",
                "--name",
                "http_load_2threads",
            ],
        ),
        (
            "HTTP end to end, an adult CR DICOM (RG1_UNCR.dcm), one request at a time",
            "benchmarks.http_load",
            ["--upload", "adult-cr", "--concurrency", "1", "--name", "http_load_adult_cr"],
        ),
        (
            "HTTP end to end, 2 uvicorn workers",
            "benchmarks.http_load",
            ["--workers", "2", "--name", "http_load_2workers"],
        ),
        (
            "HTTP end to end, GRADCAM_ENABLED=false",
            "benchmarks.http_load",
            ["--no-gradcam", "--name", "http_load_no_gradcam"],
        ),
        (
            "Overload unbounded (MAX_INFLIGHT=1024, MAX_QUEUE_WAIT_MS=60000), heatmap requests",
            "benchmarks.http_load",
            [
                "--heatmap",
                "on",
                "--concurrency",
                "8",
                "32",
                "64",
                "128",
                "--env",
                "MAX_INFLIGHT=1024",
                "MAX_QUEUE_WAIT_MS=60000",
                "--name",
                "overload_unbounded",
            ],
        ),
        (
            "Overload, admission by expected wait (default MAX_QUEUE_WAIT_MS), heatmap requests",
            "benchmarks.http_load",
            ["--heatmap", "on", "--concurrency", "8", "32", "64", "128", "--name", "overload_shed"],
        ),
        (
            "DICOM node: C-STORE in to SR in Orthanc, against POST /predict",
            "benchmarks.dicom_node",
            [],
        ),
        (
            "The container image: size, start to ready, RSS idle and after load",
            "benchmarks.image_memory",
            [],
        ),
        ("Soak: concurrency 32, mixed traffic", "benchmarks.soak", []),
        (
            f"This checkout against {BASELINE} (BENCH_BASELINE), served at once, alternating "
            "rounds",
            "benchmarks.paired_code",
            ["--rev", BASELINE],
        ),
        (
            f"What a request costs beyond its networks: this checkout against {BASELINE} "
            "(BENCH_BASELINE), with the networks' own time in the same run",
            "benchmarks.request_cost",
            ["--rev", BASELINE],
        ),
        (
            "The record of answers: on against off, and a PostgreSQL outage under load",
            "benchmarks.recording",
            [],
        ),
        ("Population check from the pixels: who is flagged", "benchmarks.population", []),
        ("Drift: alarms on shifted and unshifted streams", "benchmarks.drift", []),
        (
            "Calibration from the record on a simulated site",
            "benchmarks.records_calibration",
            [],
        ),
        ("Grad-CAM: where the maps point, random-weight control", "benchmarks.heatmaps", []),
        ("Out-of-distribution guard: refusal rates", "benchmarks.ood_guard", []),
        ("Batch scoring: local and Ray backends", "benchmarks.batch", []),
        ("Training throughput", "benchmarks.training_speed", []),
    ]
    return runs


def result_name(module: str, args: list[str]) -> str:
    return args[args.index("--name") + 1] if "--name" in args else module.split(".")[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description="make bench: every benchmark, then the README")
    parser.add_argument(
        "--only",
        nargs="+",
        default=None,
        help="re-run only these results (e.g. heatmaps http_load_2threads); the README is "
        "assembled from every result on disk",
    )
    only = parser.parse_args().only
    sections = [
        "# Benchmark results",
        "",
        "Measured by `make bench` on this project's CI-class machine: "
        f"{processor_line(machine())}.",
        "",
    ]
    for title, module, args in scripts():
        name = result_name(module, args)
        if only is None or name in only:
            print(f"== {title}: python -m {module} {' '.join(args)}", flush=True)
            subprocess.run([sys.executable, "-m", module, *args], check=True)
        if (RESULTS / f"{name}.md").is_file():
            sections += [f"## {title}", "", (RESULTS / f"{name}.md").read_text()]
    (RESULTS / "README.md").write_text("\n".join(sections))


if __name__ == "__main__":
    main()
