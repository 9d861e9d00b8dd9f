"""Site calibration on a simulated site: the dev-test films re-encoded as full-resolution uploads
(what a hospital's files look like), split in two halves by class; calibrate on one half, judge
on the other, both ways. Before = the shipped bundle, after = its site-calibrated copy.

    python -m benchmarks.site_calibration [--model DIR]

Writes benchmarks/results/site_calibration.{json,md}.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import write_result
from benchmarks.devdata import dev_data_root
from engine import Predictor, default_model_dir
from training.calibration import brier_score, expected_calibration_error
from training.data import CLASS_NAMES, list_split
from training.metrics import classification_metrics
from training.site_calibration import calibrate_site
from training.upload_simulation import simulate_upload


def write_site(folder: Path, films: list[tuple[bytes, int]]) -> list[tuple[Path, int]]:
    written = []
    for i, (data, label) in enumerate(films):
        path = folder / CLASS_NAMES[label] / f"upload-{i:04d}.jpeg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append((path, label))
    return written


def judge(model_dir: Path, films: list[tuple[Path, int]]) -> dict:
    predictor = Predictor.from_directory(model_dir, gradcam_enabled=False)
    labels = np.array([y for _, y in films])
    probs = np.array(
        [predictor.predict(p.read_bytes(), heatmap=False).probability for p, _ in films]
    )
    metrics = classification_metrics(labels, probs, predictor.threshold)
    return {
        **{
            k: metrics[k]
            for k in ("threshold", "accuracy", "sensitivity", "specificity", "roc_auc")
        },
        "ece_10_bins": expected_calibration_error(probs, labels),
        "brier": brier_score(probs, labels),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(default_model_dir()))
    args = parser.parse_args()
    test = list_split(dev_data_root() / "chest_xray", "test")
    rng = np.random.default_rng(2026)
    uploads = [
        (simulate_upload(p.read_bytes(), rng), y)
        for p, y in zip(test.paths, test.labels, strict=True)
    ]
    order = rng.permutation(len(uploads))
    halves: list[list] = [[], []]
    seen = {0: 0, 1: 0}
    for i in order:  # alternate within each class: the halves are stratified
        data, label = uploads[i]
        halves[seen[label] % 2].append((data, label))
        seen[label] += 1
    result: dict = {"films": len(uploads), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        sites = [write_site(Path(tmp) / f"half{k}", halves[k]) for k in (0, 1)]
        for fit, check in ((0, 1), (1, 0)):
            out = Path(tmp) / f"calibrated-on-half{fit}"
            calibrate_site(Path(args.model), Path(tmp) / f"half{fit}", out)
            result["runs"].append(
                {
                    "fit_on": f"half {fit} ({len(sites[fit])} films)",
                    "judged_on": f"half {check} ({len(sites[check])} films)",
                    "before": judge(Path(args.model), sites[check]),
                    "after": judge(out, sites[check]),
                }
            )
    rows = [
        "| fit on -> judged on | | threshold | ECE | Brier | accuracy | sensitivity "
        "| specificity |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in result["runs"]:
        for when in ("before", "after"):
            m = run[when]
            rows.append(
                f"| {run['fit_on']} -> {run['judged_on']} | {when} | {m['threshold']:.3f} | "
                f"{m['ece_10_bins']:.3f} | {m['brier']:.3f} | {100 * m['accuracy']:.1f}% | "
                f"{100 * m['sensitivity']:.1f}% | {100 * m['specificity']:.1f}% |"
            )
    md = (
        "Simulated site: dev-test as full-resolution uploads, two stratified halves.\n\n"
        + "\n".join(rows)
        + "\n"
    )
    write_result("site_calibration", result, md)
    print(md)


if __name__ == "__main__":
    main()
