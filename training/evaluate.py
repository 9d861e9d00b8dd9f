"""Score a bundle on a labelled split exactly as the service would, and report it.

Every file goes through the service's own path (bytes -> shared chain -> ONNX), so the numbers are
the service's numbers. Also checks resolution robustness: each image upscaled to ~1500 px.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from engine import ModelBundle, ModelCard
from imaging import ImageError, decode_grayscale, preprocess_bytes, probe_image
from training.data import CLASS_NAMES, list_split
from training.metrics import classification_metrics
from training.plots import plot_confusion, plot_histograms, plot_roc, plot_training_curves

log = logging.getLogger(__name__)

UPSCALED_LONG_SIDE = 1500
ROBUSTNESS_TOLERANCE = 0.05


def upscale_bytes(data: bytes, long_side: int = UPSCALED_LONG_SIDE) -> bytes:
    """The same image re-encoded (PNG, lossless) with its long side at `long_side` pixels."""
    gray = decode_grayscale(data, probe_image(data))
    h, w = gray.shape
    factor = long_side / max(h, w)
    big = cv2.resize(gray, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_CUBIC)
    ok, encoded = cv2.imencode(".png", big, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return encoded.tobytes()


def score_files(
    bundle: ModelBundle, paths: list[Path], upscale: bool = False, desc: str = "score"
) -> tuple[np.ndarray, list[int], list[tuple[Path, str]]]:
    """Probabilities for the readable files; indices kept; (path, reason) for each skipped one."""
    probs: list[float] = []
    kept: list[int] = []
    skipped: list[tuple[Path, str]] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        if batch:
            probs.extend(bundle.predict(np.stack(batch)).tolist())
            batch.clear()

    for i, path in enumerate(tqdm(paths, desc=desc)):
        try:
            data = path.read_bytes()
            if upscale:
                data = upscale_bytes(data)
            batch.append(preprocess_bytes(data, bundle.preprocessing))
            kept.append(i)
        except (ImageError, OSError) as exc:
            skipped.append((path, f"{type(exc).__name__}: {exc}"))
            log.warning("skipped %s (%s)", path, exc)
        if len(batch) == 64:
            flush()
    flush()
    return np.asarray(probs, dtype=np.float64), kept, skipped


def evaluate(
    bundle_dir: Path,
    data_dir: Path,
    out_dir: Path | None = None,
    split: str = "test",
    update_card: bool = False,
    robustness: bool = True,
) -> dict[str, Any]:
    """Write metrics.json, predictions.csv, report.md and PNG plots; return the metrics."""
    bundle = ModelBundle.load(bundle_dir)
    out_dir = Path(out_dir or Path(bundle_dir) / "evaluation")
    out_dir.mkdir(parents=True, exist_ok=True)
    data_dir = Path(data_dir)
    files = list_split(data_dir, split)
    if len(files) == 0:
        raise FileNotFoundError(f"no images under {data_dir}/{split}/{{NORMAL,PNEUMONIA}}")

    probs, kept, skipped = score_files(bundle, files.paths, desc=f"score {split}")
    labels = np.asarray(files.labels)[kept]
    paths = [files.paths[i] for i in kept]
    threshold = bundle.threshold
    results: dict[str, Any] = {
        "model_version": bundle.version,
        "data": f"{Path(data_dir).name}/{split}",
        "class_counts": files.class_counts(),
        "skipped_files": [f"{p}: {why}" for p, why in skipped],
        "at_bundle_threshold": classification_metrics(labels, probs, threshold),
        "at_0.5": classification_metrics(labels, probs, 0.5),
    }

    with open(out_dir / "predictions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "true_label", "probability", "predicted_label"])
        for path, label, prob in zip(paths, labels, probs, strict=True):
            predicted = CLASS_NAMES[int(prob >= threshold)]
            shown = path.relative_to(data_dir) if path.is_relative_to(data_dir) else path
            writer.writerow([str(shown), CLASS_NAMES[label], f"{prob:.6f}", predicted])

    if robustness:
        big_probs, big_kept, _ = score_files(
            bundle, paths, upscale=True, desc=f"score {split} at {UPSCALED_LONG_SIDE} px"
        )
        delta = np.abs(big_probs - probs[big_kept])
        results["resolution_robustness"] = {
            "upscaled_long_side": UPSCALED_LONG_SIDE,
            "tolerance": ROBUSTNESS_TOLERANCE,
            "share_within_tolerance": float(np.mean(delta <= ROBUSTNESS_TOLERANCE)),
            "median_abs_change": float(np.median(delta)),
            "max_abs_change": float(np.max(delta)),
            "label_flips": int(np.sum((big_probs >= threshold) != (probs[big_kept] >= threshold))),
            "metrics_upscaled": classification_metrics(labels[big_kept], big_probs, threshold),
        }

    at_t = results["at_bundle_threshold"]
    plot_roc(labels, probs, threshold, at_t["roc_auc"], out_dir / "roc_curve.png")
    plot_confusion(at_t["confusion_matrix"], threshold, out_dir / "confusion_matrix.png")
    plot_histograms(labels, probs, threshold, out_dir / "probability_histogram.png")
    has_curves = plot_training_curves(
        Path(bundle_dir) / "training_log.csv", out_dir / "training_curves.png"
    )
    (out_dir / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "report.md").write_text(markdown_report(results, has_curves))
    log.info("wrote %s", out_dir)
    print(markdown_table(results))

    if update_card:
        card = ModelCard.read(bundle_dir)
        metrics = {
            **card.metrics,
            f"dev_{split}": {k: v for k, v in results.items() if k != "model_version"},
        }
        card.model_copy(update={"metrics": metrics}).write(bundle_dir)
    return results


def markdown_table(results: dict[str, Any]) -> str:
    rows = [
        "| metric | at bundle threshold | at 0.5 |",
        "| --- | --- | --- |",
    ]
    a, b = results["at_bundle_threshold"], results["at_0.5"]
    for key in (
        "threshold",
        "accuracy",
        "sensitivity",
        "specificity",
        "precision",
        "f1",
        "roc_auc",
        "pr_auc",
    ):
        rows.append(f"| {key} | {a[key]:.4f} | {b[key]:.4f} |")
    rows.append(
        f"| confusion [[TN, FP], [FN, TP]] | {a['confusion_matrix']} | {b['confusion_matrix']} |"
    )
    return "\n".join(rows) + "\n"


def markdown_report(results: dict[str, Any], has_curves: bool) -> str:
    lines = [
        f"# Evaluation of {results['model_version']} on {results['data']}",
        "",
        f"Images: {results['class_counts']}; skipped: {len(results['skipped_files'])}.",
        "",
        markdown_table(results),
    ]
    robust = results.get("resolution_robustness")
    if robust:
        lines += [
            f"Resolution robustness (each image upscaled to {robust['upscaled_long_side']} px): "
            f"{robust['share_within_tolerance']:.1%} of probabilities move by <= "
            f"{robust['tolerance']}; median change {robust['median_abs_change']:.4f}, "
            f"max {robust['max_abs_change']:.4f}, label flips {robust['label_flips']}.",
            "",
        ]
    lines += [
        "![ROC](roc_curve.png) ![confusion](confusion_matrix.png)",
        "",
        "![histogram](probability_histogram.png)",
        "",
    ]
    if has_curves:
        lines += ["![training curves](training_curves.png)", ""]
    return "\n".join(lines)
