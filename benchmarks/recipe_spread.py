"""The training recipe's spread over seeds: several bundles trained by the same recipe with
different seeds, each scored on the dev-test split at its own stored threshold (and at 0.5), with
the p99 change in probability under the evaluation's invisible changes and where the Grad-CAM maps
of the pneumonia films point (skipped with --quick).

    python -m benchmarks.recipe_spread BUNDLE [BUNDLE ...] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.common import write_result
from benchmarks.devdata import dev_data_root
from engine import ModelBundle
from training.data import list_split
from training.evaluate import Scorer, heatmap_summary, read_films, robustness
from training.metrics import classification_metrics

KEYS = ("roc_auc", "accuracy", "sensitivity", "specificity")


def score(bundle_dir: Path, quick: bool = False) -> dict:
    bundle = ModelBundle.load(bundle_dir)
    scorer = Scorer(bundle)
    files = list_split(dev_data_root() / "chest_xray", "test")
    films = read_films(files.paths, bundle, desc=bundle.version)
    probs, _ = scorer.run(films.tensors)
    labels = np.asarray(files.labels)[films.kept]
    seeds = [run["seed"] for run in bundle.card.training.get("member_runs", [])]
    row = {
        "bundle": bundle_dir.name,
        "version": bundle.version,
        "member_seeds": seeds or bundle.card.training.get("assembled_from"),
        "teacher": bundle.card.training.get("distilled_from", {}).get("version"),
        "validation_uploads_auc": bundle.card.metrics["validation_uploads"]["roc_auc"],
        "threshold_rule": bundle.card.threshold.rule or "youden",
        "mean_logit_cut": bundle.card.threshold.mean_logit_cut,
        "at_threshold": classification_metrics(labels, probs, bundle.threshold),
        "at_0.5": classification_metrics(labels, probs, 0.5),
    }
    if not quick:
        datas = [files.paths[i].read_bytes() for i in films.kept]
        changes = robustness(scorer, datas, desc=f"{bundle.version} robustness")
        row["invisible_changes_p99"] = {name: c["p99"] for name, c in changes.items()}
        row["heatmaps_pneumonia_films"] = heatmap_summary(bundle, films.tensors, labels, probs)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--name", default="recipe_spread")
    parser.add_argument("--quick", action="store_true", help="skip robustness and heatmaps")
    args = parser.parse_args()
    rows = [score(b, args.quick) for b in args.bundles]
    summary = {}
    for key in KEYS:
        values = np.array([r["at_threshold"][key] for r in rows])
        summary[key] = {
            "mean": float(values.mean()),
            "min": float(values.min()),
            "max": float(values.max()),
        }
    thresholds = np.array([r["at_threshold"]["threshold"] for r in rows])
    summary["threshold_range"] = float(thresholds.max() - thresholds.min())
    cuts = [r["mean_logit_cut"] for r in rows if r["mean_logit_cut"] is not None]
    if cuts:
        summary["mean_logit_cut"] = {"min": float(min(cuts)), "max": float(max(cuts))}
    changes = ("gray_level_plus_1", "jpeg_quality_90", "full_vs_reduced_jpeg_decode")
    md = [
        "| bundle | member seeds | teacher | validation AUC | dev-test AUC | accuracy | "
        "sensitivity | specificity | threshold (rule) | cut on the mean logit | "
        "p99 gray+1 / JPEG q90 / full decode | Grad-CAM peak on ring / mass in thorax box |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        m = r["at_threshold"]
        p99 = r.get("invisible_changes_p99")
        maps = r.get("heatmaps_pneumonia_films")
        md.append(
            f"| {r['bundle']} | {r['member_seeds']} | {r['teacher'] or '-'} | "
            f"{r['validation_uploads_auc']:.4f} | {m['roc_auc']:.4f} | {m['accuracy']:.4f} | "
            f"{m['sensitivity']:.4f} | {m['specificity']:.4f} | "
            f"{m['threshold']:.3f} ({r['threshold_rule']}) | "
            + (f"{r['mean_logit_cut']:.3f}" if r["mean_logit_cut"] is not None else "-")
            + " | "
            + (" / ".join(f"{p99[c]:.4f}" for c in changes) if p99 else "-")
            + " | "
            + (
                f"{maps['peak_on_outer_ring_share']:.1%} / {maps['median_mass_in_thorax_box']:.3f}"
                if maps
                else "-"
            )
            + " |"
        )
    md.append(
        "| **mean (min-max)** | | | | "
        + " | ".join(
            f"{summary[k]['mean']:.4f} ({summary[k]['min']:.4f}-{summary[k]['max']:.4f})"
            for k in KEYS
        )
        + f" | range {summary['threshold_range']:.3f} | "
        + (
            f"{summary['mean_logit_cut']['min']:.3f} to {summary['mean_logit_cut']['max']:.3f}"
            if cuts
            else "-"
        )
        + " | | |"
    )
    write_result(args.name, {"bundles": rows, "summary": summary}, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
