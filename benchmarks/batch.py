"""Batch scoring throughput: the local backend and the Ray backend (1 and 2 predictor actors) on
the same files, probabilities only and with heatmaps, on this machine.

    python -m benchmarks.batch [--images 300]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, machine, write_result
from benchmarks.devdata import dev_data_root
from engine import default_model_dir
from training.data import list_split


def run(files: list[Path], backend: str, workers: int, heatmaps: bool, model: str) -> dict:
    """Wall time of `python -m app predict` (start-up included, as a user would see it)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "app", "predict", *map(str, files)]
        cmd += ["--out", f"{tmp}/out.csv", "--model", model]
        cmd += ["--backend", backend, "--workers", str(workers)]
        if heatmaps:
            cmd += ["--heatmaps", f"{tmp}/maps"]
        started = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
        seconds = time.perf_counter() - started
    return {
        "backend": backend,
        "workers": workers,
        "heatmaps": heatmaps,
        "images": len(files),
        "seconds": round(seconds, 1),
        "images_per_s": round(len(files) / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(default_model_dir()))
    parser.add_argument("--images", type=int, default=300)
    args = parser.parse_args()
    files = list_split(dev_data_root() / "chest_xray", "test").paths[: args.images]
    runs = []
    for heatmaps in (False, True):
        runs.append(run(files, "local", 1, heatmaps, args.model))
        for workers in (1, 2):
            runs.append(run(files, "ray", workers, heatmaps, args.model))
    rows = [
        f"{len(files)} dev-test films scored by `python -m app predict` (wall time, start-up "
        "and Ray's start included).",
        "",
        "| backend | workers | heatmaps | seconds | images/s |",
        "| --- | --- | --- | --- | --- |",
    ]
    rows += [
        f"| {r['backend']} | {r['workers']} | {r['heatmaps']} | {r['seconds']} | "
        f"{r['images_per_s']} |"
        for r in runs
    ]
    write_result("batch", {"machine": machine(), "runs": runs}, "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
