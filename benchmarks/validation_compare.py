"""Candidate bundles side by side on the validation split only (the selection split; the test split
is never read): ROC AUC on the films as files, the p99 change in probability under the
evaluation's invisible changes, where the Grad-CAM maps of the pneumonia films point, and what
the guard refuses (validation films, the non-film set, negatives of validation films).

    python -m benchmarks.validation_compare BUNDLE [BUNDLE ...] [--name validation_compare]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from benchmarks.common import validation_split, write_result
from benchmarks.nonxray import negative, not_chest_xrays
from benchmarks.ood_guard import judge
from engine import ModelBundle
from training.evaluate import Scorer, heatmap_summary, read_films, robustness

CHANGES = ("gray_level_plus_1", "jpeg_quality_90", "full_vs_reduced_jpeg_decode")
NEGATIVES = 100  # validation films turned into negatives for the guard


def refused(scorer: Scorer, datas: list[bytes]) -> int:
    return int(judge(scorer, datas)[1].sum())


def compare(bundle_dir: Path, paths: list[Path], labels: np.ndarray, others: list[bytes]) -> dict:
    bundle = ModelBundle.load(bundle_dir)
    scorer = Scorer(bundle)
    films = read_films(paths, bundle, desc=bundle_dir.name)
    probs, _ = scorer.run(films.tensors)
    y = labels[films.kept]
    datas = [paths[i].read_bytes() for i in films.kept]
    changes = robustness(scorer, datas, desc=f"{bundle_dir.name} robustness")
    maps = heatmap_summary(bundle, films.tensors, y, probs)
    return {
        "bundle": bundle_dir.name,
        "version": bundle.version,
        "networks": len(bundle.card.gradcam.members),
        "validation_auc_files": float(roc_auc_score(y, probs)),
        "invisible_changes_p99": {name: changes[name]["p99"] for name in CHANGES},
        "heatmaps_pneumonia_films": maps,
        "guard_refused": {
            "validation_films": [refused(scorer, datas), len(datas)],
            "not_chest_xrays": [refused(scorer, others), len(others)],
            "negatives": [refused(scorer, [negative(d) for d in datas[:NEGATIVES]]), NEGATIVES],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--name", default="validation_compare")
    args = parser.parse_args()
    val = validation_split()
    others = [data for _, data in not_chest_xrays().values()]
    labels = np.asarray(val.labels)
    rows = [compare(b, val.paths, labels, others) for b in args.bundles]
    md = [
        f"Validation split ({len(val.paths)} films as files; the selection split, never the test "
        "split).",
        "",
        "| bundle | networks | AUC | p99 gray+1 / JPEG q90 / full decode | Grad-CAM peak on the "
        "10x10 ring (own grid) / mass in thorax box | guard refused: films / non-films / "
        "negatives |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        p99, maps = r["invisible_changes_p99"], r["heatmaps_pneumonia_films"]
        ring, own_ring = maps["peak_on_outer_ring_share"], maps["peak_on_own_grid_ring_share"]
        md.append(
            f"| {r['bundle']} | {r['networks']} | {r['validation_auc_files']:.4f} | "
            + " / ".join(f"{p99[c]:.4f}" for c in CHANGES)
            + f" | {ring:.1%} ({own_ring:.1%}) / {maps['median_mass_in_thorax_box']:.3f} | "
            + " / ".join(f"{a}/{n}" for a, n in r["guard_refused"].values())
            + " |"
        )
    write_result(args.name, {"bundles": rows}, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
