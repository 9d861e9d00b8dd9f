"""Run every benchmark in turn and collect their Markdown into benchmarks/results/README.md.

python -m benchmarks.run        (make bench)
"""

from __future__ import annotations

import subprocess
import sys

from benchmarks.common import RESULTS

SCRIPTS = [
    ("Stage timings, ONNX vs the seed's Keras path, FLOPs", "benchmarks.stages", []),
    ("HTTP end to end, 1 uvicorn worker", "benchmarks.http_load", []),
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
    ("Soak: concurrency 32, mixed traffic", "benchmarks.soak", []),
    ("Grad-CAM sanity: mass in the thorax, random-weight control", "benchmarks.heatmaps", []),
    ("Training throughput", "benchmarks.training_speed", []),
]


def main() -> None:
    sections = [
        "# Benchmark results",
        "",
        "Measured on this project's 2-core CI-class machine by `make bench`.",
        "",
    ]
    for title, module, args in SCRIPTS:
        print(f"== {title}: python -m {module} {' '.join(args)}", flush=True)
        subprocess.run([sys.executable, "-m", module, *args], check=True)
        name = args[args.index("--name") + 1] if "--name" in args else module.split(".")[-1]
        sections += [f"## {title}", "", (RESULTS / f"{name}.md").read_text()]
    (RESULTS / "README.md").write_text("\n".join(sections))


if __name__ == "__main__":
    main()
