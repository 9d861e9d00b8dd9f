"""The training recipe's spread over seeds: several bundles trained by the same recipe with
different seeds, each scored on the dev-test split at its own stored threshold (and at 0.5).

    python -m benchmarks.recipe_spread BUNDLE [BUNDLE ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.common import write_result
from benchmarks.devdata import dev_data_root
from engine import ModelBundle
from training.data import list_split
from training.evaluate import Scorer, read_films
from training.metrics import classification_metrics

KEYS = ("roc_auc", "accuracy", "sensitivity", "specificity")


def score(bundle_dir: Path) -> dict:
    bundle = ModelBundle.load(bundle_dir)
    files = list_split(dev_data_root() / "chest_xray", "test")
    films = read_films(files.paths, bundle, desc=bundle.version)
    probs, _ = Scorer(bundle).run(films.tensors)
    labels = np.asarray(files.labels)[films.kept]
    seeds = [run["seed"] for run in bundle.card.training.get("member_runs", [])]
    return {
        "bundle": bundle_dir.name,
        "version": bundle.version,
        "member_seeds": seeds or bundle.card.training.get("assembled_from"),
        "validation_uploads_auc": bundle.card.metrics["validation_uploads"]["roc_auc"],
        "at_threshold": classification_metrics(labels, probs, bundle.threshold),
        "at_0.5": classification_metrics(labels, probs, 0.5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--name", default="recipe_spread")
    args = parser.parse_args()
    rows = [score(b) for b in args.bundles]
    summary = {}
    for key in KEYS:
        values = np.array([r["at_threshold"][key] for r in rows])
        summary[key] = {
            "mean": float(values.mean()),
            "min": float(values.min()),
            "max": float(values.max()),
        }
    md = [
        "| bundle | member seeds | validation AUC | dev-test AUC | accuracy | sensitivity | "
        "specificity | threshold |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        m = r["at_threshold"]
        md.append(
            f"| {r['bundle']} | {r['member_seeds']} | {r['validation_uploads_auc']:.4f} | "
            f"{m['roc_auc']:.4f} | {m['accuracy']:.4f} | {m['sensitivity']:.4f} | "
            f"{m['specificity']:.4f} | {m['threshold']:.3f} |"
        )
    md.append(
        "| **mean (min-max)** | | | "
        + " | ".join(
            f"{summary[k]['mean']:.4f} ({summary[k]['min']:.4f}-{summary[k]['max']:.4f})"
            for k in KEYS
        )
        + " | |"
    )
    write_result(args.name, {"bundles": rows, "summary": summary}, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
