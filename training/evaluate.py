"""Score a bundle on a labelled split exactly as the service would, and report it.

Every file goes through the service's own path (bytes -> shared chain -> ONNX), so the numbers are
the service's numbers: classification at the bundle's threshold and at 0.5, calibration (ECE,
Brier, reliability diagram), the out-of-distribution guard's refusals of these real films,
robustness to invisible changes, and where the Grad-CAM maps point.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from engine import ModelBundle, ModelCard
from engine.ood import OodGuard
from imaging import (
    ImageError,
    colourfulness,
    decode_grayscale,
    decode_upload,
    preprocess_grayscale,
    probe_image,
)
from training.calibration import brier_score, expected_calibration_error, reliability
from training.data import CLASS_NAMES, list_split
from training.heatmap_stats import colour_by_answer, summarize_maps
from training.metrics import classification_metrics
from training.plots import (
    plot_confusion,
    plot_histograms,
    plot_reliability,
    plot_roc,
    plot_training_curves,
)
from training.robustness import perturbation_pairs, summarize
from training.upload_simulation import simulate_upload

log = logging.getLogger(__name__)

UPSCALED_LONG_SIDE = 1500
ROBUSTNESS_TOLERANCE = 0.05
BATCH = 64


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


class Scorer:
    """The service's numbers for encoded films: probability and guard score, in batches."""

    def __init__(self, bundle: ModelBundle) -> None:
        self.bundle = bundle
        card = bundle.card
        self.guard = OodGuard.load(bundle.directory, card.ood) if card.ood else None

    def run(self, tensors: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        probs, features = [], []
        for i in range(0, len(tensors), BATCH):
            out = self.bundle.run(np.stack(tensors[i : i + BATCH]))
            probs.append(out[self.bundle.card.probability_output.name].reshape(-1))
            if self.guard is not None:
                features.append(out[self.guard.spec.feature_output])
        scores = (
            np.array([self.guard.score(f) for f in np.concatenate(features)])
            if self.guard is not None and features
            else np.full(sum(len(p) for p in probs), np.nan)
        )
        return np.concatenate(probs).astype(np.float64) if probs else np.zeros(0), scores

    def refused(
        self, scores: np.ndarray, grays: list[np.ndarray], colours: list[float] | None = None
    ) -> np.ndarray:
        """What the service's guard would refuse: the engine's own rule, film by film."""
        if self.guard is None:
            return np.zeros(len(grays), bool)
        colours = colours or [0.0] * len(grays)
        return np.array(
            [
                not self.guard.verdict(score, gray, colour).in_distribution
                for score, gray, colour in zip(scores, grays, colours, strict=True)
            ]
        )


@dataclass
class Films:
    """Films read through the service's decode and chain, and what the guard looks at."""

    tensors: list[np.ndarray] = field(default_factory=list)
    grays: list[np.ndarray] = field(default_factory=list)
    colours: list[float] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)  # indices into the paths given
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @classmethod
    def of(cls, datas: list[bytes], params) -> Films:
        films = cls()
        for data in datas:
            films.add(data, params)
        return films

    def add(self, data: bytes, params) -> None:
        header, gray = decode_upload(data, params)
        self.tensors.append(preprocess_grayscale(gray, params))
        self.grays.append(gray)
        self.colours.append(colourfulness(data, header))


def read_films(paths: list[Path], bundle: ModelBundle, transform=None, desc: str = "read") -> Films:
    films = Films()
    for i, path in enumerate(tqdm(paths, desc=desc)):
        try:
            data = path.read_bytes()
            films.add(transform(data) if transform is not None else data, bundle.preprocessing)
            films.kept.append(i)
        except (ImageError, OSError) as exc:
            films.skipped.append((path, f"{type(exc).__name__}: {exc}"))
            log.warning("skipped %s (%s)", path, exc)
    return films


def robustness(
    scorer: Scorer, datas: list[bytes], seed: int = 0, desc: str = "robustness"
) -> dict[str, Any]:
    """p50/p99/max |change in probability| for each invisible perturbation."""
    rng = np.random.default_rng(seed)
    pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for data in tqdm(datas, desc=desc):
        for name, pair in perturbation_pairs(data, scorer.bundle.preprocessing, rng).items():
            pairs.setdefault(name, []).append(pair)
    out = {}
    for name, items in pairs.items():
        before, _ = scorer.run([a for a, _ in items])
        after, _ = scorer.run([b for _, b in items])
        out[name] = summarize(after - before)
    return out


METHOD_NAMES = {"gradcam": "Grad-CAM", "hirescam": "HiResCAM"}


def heatmap_summary(
    bundle: ModelBundle, tensors: list[np.ndarray], labels: np.ndarray, probs: np.ndarray
) -> dict:
    """Grad-CAM (pneumonia evidence) of every film: where the pneumonia films' maps point, and
    how much colour the overlay shows on NORMAL answers against PNEUMONIA answers."""
    from engine.gradcam import GradCam

    cam = GradCam(bundle.keras_model(), bundle.card.gradcam, bundle.preprocessing.image_size)
    maps = [cam(t) for t in tqdm(tensors, desc="Grad-CAM", unit="film", leave=False)]
    sick = np.flatnonzero(np.asarray(labels) == 1)
    return {
        "method": bundle.card.gradcam.method,
        **summarize_maps([maps[i] for i in sick]),
        "colour": colour_by_answer(maps, probs, bundle.threshold),
    }


def sample_checks(scorer: Scorer, samples_dir: Path, variants: int = 3) -> dict[str, Any]:
    """The full-resolution samples and simulated uploads of them: refusals and robustness."""
    files = sorted(p for p in samples_dir.iterdir() if p.is_file())
    rng = np.random.default_rng(1)
    datas = [p.read_bytes() for p in files]
    uploads = [simulate_upload(d, rng) for d in datas for _ in range(variants)]
    everything = datas + uploads
    films = Films.of(everything, scorer.bundle.preprocessing)
    _, scores = scorer.run(films.tensors)
    refused = scorer.refused(scores, films.grays, films.colours)
    return {
        "files": len(datas),
        "simulated_uploads": len(uploads),
        "refused_by_guard": int(refused.sum()),
        "max_ood_score": float(np.nanmax(scores)) if np.isfinite(scores).any() else None,
        "robustness": robustness(scorer, everything, seed=2, desc="samples robustness"),
    }


def evaluate(
    bundle_dir: Path,
    data_dir: Path,
    out_dir: Path | None = None,
    split: str = "test",
    update_card: bool = False,
    robustness_checks: bool = True,
    heatmaps: bool = True,
    samples_dir: Path | None = None,
) -> dict[str, Any]:
    """Write metrics.json, predictions.csv, report.md and PNG plots; return the metrics."""
    bundle = ModelBundle.load(bundle_dir)
    scorer = Scorer(bundle)
    out_dir = Path(out_dir or Path(bundle_dir) / "evaluation")
    out_dir.mkdir(parents=True, exist_ok=True)
    data_dir = Path(data_dir)
    files = list_split(data_dir, split)
    if len(files) == 0:
        raise FileNotFoundError(f"no images under {data_dir}/{split}/{{NORMAL,PNEUMONIA}}")

    films = read_films(files.paths, bundle, desc=f"score {split}")
    tensors, kept, skipped = films.tensors, films.kept, films.skipped
    probs, scores = scorer.run(tensors)
    refused = scorer.refused(scores, films.grays, films.colours)
    labels = np.asarray(files.labels)[kept]
    paths = [files.paths[i] for i in kept]
    threshold = bundle.threshold
    results: dict[str, Any] = {
        "model_version": bundle.version,
        "data": f"{data_dir.name}/{split}",
        "class_counts": files.class_counts(),
        "skipped_files": [f"{p}: {why}" for p, why in skipped],
        "at_bundle_threshold": classification_metrics(labels, probs, threshold),
        "at_0.5": classification_metrics(labels, probs, 0.5),
        "calibration": {
            "ece_10_bins": expected_calibration_error(probs, labels),
            "brier": brier_score(probs, labels),
            "reliability": reliability(probs, labels),
        },
        "out_of_distribution": {
            "films_refused": int(refused.sum()),
            "films": len(labels),
            "refused_files": [str(p.name) for p, r in zip(paths, refused, strict=True) if r],
            "max_score": float(np.nanmax(scores)) if np.isfinite(scores).any() else None,
            "threshold": bundle.card.ood.threshold if bundle.card.ood else None,
        },
    }

    with open(out_dir / "predictions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["file", "true_label", "probability", "predicted_label", "in_distribution", "ood_score"]
        )
        for path, label, prob, score, out in zip(
            paths, labels, probs, scores, refused, strict=True
        ):
            predicted = bundle.labels[int(prob >= threshold)]
            shown = path.relative_to(data_dir) if path.is_relative_to(data_dir) else path
            writer.writerow(
                [
                    str(shown),
                    CLASS_NAMES[label],
                    f"{prob:.6f}",
                    predicted,
                    str(not out).lower(),
                    f"{score:.4f}",
                ]
            )

    if robustness_checks:
        big = read_films(
            paths, bundle, transform=upscale_bytes, desc=f"{split} at {UPSCALED_LONG_SIDE} px"
        )
        big_kept = big.kept
        big_probs, _ = scorer.run(big.tensors)
        delta = np.abs(big_probs - probs[big_kept])
        results["resolution_robustness"] = {
            "upscaled_long_side": UPSCALED_LONG_SIDE,
            "tolerance": ROBUSTNESS_TOLERANCE,
            "share_within_tolerance": float(np.mean(delta <= ROBUSTNESS_TOLERANCE)),
            "median_abs_change": float(np.median(delta)),
            "max_abs_change": float(np.max(delta)),
            "label_flips": int(np.sum((big_probs >= threshold) != (probs[big_kept] >= threshold))),
        }
        results["invisible_changes"] = robustness(
            scorer, [p.read_bytes() for p in paths], desc=f"{split} robustness"
        )
    if heatmaps:
        results["heatmaps_pneumonia_films"] = heatmap_summary(bundle, tensors, labels, probs)
    if samples_dir is not None and Path(samples_dir).is_dir():
        results["samples"] = sample_checks(scorer, Path(samples_dir))

    at_t = results["at_bundle_threshold"]
    plot_roc(labels, probs, threshold, at_t["roc_auc"], out_dir / "roc_curve.png")
    plot_confusion(at_t["confusion_matrix"], threshold, out_dir / "confusion_matrix.png")
    plot_histograms(labels, probs, threshold, out_dir / "probability_histogram.png")
    plot_reliability(
        results["calibration"]["reliability"],
        results["calibration"]["ece_10_bins"],
        out_dir / "reliability_diagram.png",
    )
    has_curves = plot_training_curves(
        Path(bundle_dir) / "training_log.csv", out_dir / "training_curves.png"
    )
    (out_dir / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "report.md").write_text(markdown_report(results, has_curves))
    log.info("wrote %s", out_dir)
    print(markdown_table(results))

    if update_card:
        card = ModelCard.read(bundle_dir)
        summary = {k: v for k, v in results.items() if k != "model_version"}
        card.model_copy(update={"metrics": {**card.metrics, f"dev_{split}": summary}}).write(
            bundle_dir
        )
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
    calibration = results["calibration"]
    guard = results["out_of_distribution"]
    lines = [
        f"# Evaluation of {results['model_version']} on {results['data']}",
        "",
        f"Images: {results['class_counts']}; skipped: {len(results['skipped_files'])}.",
        "",
        markdown_table(results),
        f"Calibration: ECE (10 bins) {calibration['ece_10_bins']:.4f}, Brier "
        f"{calibration['brier']:.4f}. Out-of-distribution guard: {guard['films_refused']} of "
        f"{guard['films']} films refused (limit {guard['threshold']}, highest score "
        f"{guard['max_score']}).",
        "",
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
    for title, key in (("this split", "invisible_changes"), ("the samples", "samples")):
        block = results.get(key)
        block = block.get("robustness") if key == "samples" and block else block
        if block:
            lines += [f"Invisible changes on {title}, |change in probability|:", ""]
            lines += ["| change | n | median | p99 | max |", "| --- | --- | --- | --- | --- |"]
            lines += [
                f"| {name} | {s['n']} | {s['median']:.4f} | {s['p99']:.4f} | {s['max']:.4f} |"
                for name, s in block.items()
            ]
            lines.append("")
    maps = results.get("heatmaps_pneumonia_films")
    if maps:
        lines += [
            f"Heatmaps ({METHOD_NAMES[maps.get('method', 'gradcam')]}) of the pneumonia films "
            f"({maps['maps']} maps, {maps['empty_maps']} empty): "
            f"peak on the outer ring of a 10x10 grid {maps['peak_on_outer_ring_share']:.1%} (on "
            f"the map's own grid {maps['peak_on_own_grid_ring_share']:.1%}); median share "
            f"of the map inside the thorax box {maps['median_mass_in_thorax_box']:.3f}.",
            "",
        ]
        colour = maps.get("colour")
        if colour:
            lines += [
                "Overlay colour (mean opacity over the film, maps of pneumonia evidence scaled by "
                f"the probability): {colour['mean_colour_mass_normal_answers']:.4f} on the "
                f"{colour['normal_answers']} NORMAL answers, "
                f"{colour['mean_colour_mass_pneumonia_answers']:.4f} on the "
                f"{colour['pneumonia_answers']} PNEUMONIA answers.",
                "",
            ]
    lines += [
        "![ROC](roc_curve.png) ![reliability](reliability_diagram.png)",
        "",
        "![confusion](confusion_matrix.png) ![histogram](probability_histogram.png)",
        "",
    ]
    if has_curves:
        lines += ["![training curves](training_curves.png)", ""]
    return "\n".join(lines)
