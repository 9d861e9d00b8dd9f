"""`python -m training calibrate`: fit the operating point to a hospital's own labelled films.

The networks stay as they are; only the Platt slope and bias inside the graph (and so the
threshold, by the card's expected-cost rule) are re-fitted on the site's films, read through the
service's own engine (decode, preprocessing, guard). The report measures what calibration did by
cross-validation on the same films (fit on k-1 folds, judge the held-out fold), so a site without a
separate test set still sees before and after. Everything is checked before anything is written;
the new bundle is written beside its destination and renamed into place at the end.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold
from tqdm import tqdm

from engine import ModelBundle, Predictor
from engine.ood import OodGuard
from imaging import ImageError, NotChestXrayError, preprocess_bytes
from training.calibration import (
    brier_score,
    expected_calibration_error,
    fit_platt,
    reliability,
    sigmoid,
)
from training.data import CLASS_NAMES, SPLITS
from training.export import MIN_PARITY_IMAGES, export_bundle
from training.metrics import classification_metrics
from training.operating_point import expected_cost_cut, expected_cost_threshold
from training.plots import plot_reliability_before_after
from training.serving import CALIBRATION_LAYER, ServingGraph

log = logging.getLogger(__name__)

MIN_PER_CLASS = 10
FOLDS = 5
LABEL_WORDS = {"normal": 0, "0": 0, "pneumonia": 1, "1": 1}


class SiteDataError(ValueError):
    """The site's films cannot calibrate the model (one-line reason); nothing was written."""


@dataclass
class SiteFilms:
    """The site's films as read: paths, labels and where they came from."""

    source: str
    paths: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {name: self.labels.count(i) for i, name in enumerate(CLASS_NAMES)}

    def sha256(self) -> str:
        """Each film's class and content hash, sorted: the same films give the same hash."""
        rows = sorted(
            f"{CLASS_NAMES[label]}:{hashlib.sha256(path.read_bytes()).hexdigest()}"
            for path, label in zip(self.paths, self.labels, strict=True)
        )
        return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def _class_dirs(folder: Path) -> dict[int, Path]:
    found = {}
    for child in folder.iterdir():
        if child.is_dir() and child.name.upper() in CLASS_NAMES:
            found[CLASS_NAMES.index(child.name.upper())] = child
    return found


def read_site(source: Path) -> SiteFilms:
    """SITE/NORMAL and SITE/PNEUMONIA, the Kaggle layout SITE/{train,val,test}/..., or a CSV of
    `file,label` (paths relative to the CSV's folder; labels NORMAL/PNEUMONIA or 0/1)."""
    source = Path(source)
    films = SiteFilms(source=source.name)
    if source.is_file():
        with open(source, newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows or not {"file", "label"} <= set(rows[0]):
            raise SiteDataError(f"{source.name} needs the columns file,label")
        for number, row in enumerate(rows, start=2):
            label = LABEL_WORDS.get(str(row["label"]).strip().lower())
            if label is None:
                raise SiteDataError(
                    f"{source.name} line {number}: label {row['label']!r} is not NORMAL, "
                    "PNEUMONIA, 0 or 1"
                )
            films.paths.append((source.parent / row["file"]).resolve())
            films.labels.append(label)
        return films
    if not source.is_dir():
        raise SiteDataError(f"no such folder or CSV file: {source}")
    folders = [source] + [p for p in sorted(source.iterdir()) if p.name.lower() in SPLITS]
    for folder in folders:
        for label, class_dir in sorted(_class_dirs(folder).items()):
            for path in _files_under(class_dir):
                films.paths.append(path)
                films.labels.append(label)
    return films


def check_counts(films: SiteFilms) -> None:
    counts = films.counts()
    present = [name for name, n in counts.items() if n > 0]
    if len(present) < 2:
        raise SiteDataError(
            f"only {present[0] if present else 'no'} films found ({counts}); calibration needs "
            "both NORMAL and PNEUMONIA films"
        )
    short = {name: n for name, n in counts.items() if n < MIN_PER_CLASS}
    if short:
        raise SiteDataError(
            f"too few films to calibrate: {short}; at least {MIN_PER_CLASS} of each class"
        )


def mean_logits(probabilities: np.ndarray, slope: float, bias: float) -> np.ndarray:
    """The networks' mean logit behind the served (calibrated) probabilities."""
    p = np.clip(np.asarray(probabilities, np.float64), 1e-7, 1 - 1e-7)
    return (np.log(p / (1 - p)) - bias) / slope


def score_site(predictor: Predictor, films: SiteFilms) -> tuple[np.ndarray, list[np.ndarray]]:
    """Calibrated probabilities from the service's own engine, and the model inputs (parity);
    refuses with one line if any film cannot be read or the guard refuses it."""
    probabilities, tensors, unreadable, refused = [], [], [], []
    params = predictor.bundle.preprocessing
    for path in tqdm(films.paths, desc="site films", unit="film"):
        try:
            data = path.read_bytes()
            result = predictor.predict(data, heatmap=False)
        except NotChestXrayError:
            refused.append(path.name)
            continue
        except (ImageError, OSError):
            unreadable.append(path.name)
            continue
        probabilities.append(result.probability)
        if len(tensors) < 4 * MIN_PARITY_IMAGES:
            tensors.append(preprocess_bytes(data, params))
    if unreadable:
        raise SiteDataError(
            f"{len(unreadable)} file(s) cannot be read as a JPEG, PNG or DICOM film "
            f"(first: {unreadable[0]}); remove or replace them"
        )
    if refused:
        raise SiteDataError(
            f"{len(refused)} film(s) are refused by the guard as not frontal chest X-rays "
            f"(first: {refused[0]}); calibrate on films the service answers"
        )
    return np.asarray(probabilities, np.float64), tensors


def _figures(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict[str, Any]:
    return {
        **classification_metrics(labels, probabilities, threshold),
        "ece_10_bins": expected_calibration_error(probabilities, labels),
        "brier": brier_score(probabilities, labels),
    }


def cross_validated(
    logits: np.ndarray,
    labels: np.ndarray,
    before: np.ndarray,
    before_threshold: float,
    false_negative_cost: float,
    folds: int = FOLDS,
) -> dict[str, Any]:
    """Before (the bundle as it is) and after (Platt re-fitted without the judged fold) on every
    film, out of fold."""
    after = np.zeros_like(before)
    split = StratifiedKFold(
        n_splits=min(folds, int(np.bincount(labels).min())), shuffle=True, random_state=0
    )
    for fit, judged in split.split(logits.reshape(-1, 1), labels):
        slope, bias = fit_platt(logits[fit], labels[fit])
        after[judged] = sigmoid(slope * logits[judged] + bias)
    cut = expected_cost_cut(false_negative_cost)
    report = {
        "folds": split.get_n_splits(),
        "before": _figures(labels, before, before_threshold),
        "after": _figures(labels, after, cut),
        "reliability_before": reliability(before, labels),
        "reliability_after": reliability(after, labels),
    }
    return report


def calibrate_site(
    model_dir: Path,
    site: Path,
    out_dir: Path,
    false_negative_cost: float | None = None,
    folds: int = FOLDS,
) -> Path:
    """Re-fit calibration and threshold on the site's films; write a complete bundle to out_dir."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    check_out_dir(out_dir)
    films = read_site(Path(site))
    check_counts(films)
    bundle = recalibratable(model_dir)
    card = bundle.card
    predictor = Predictor(bundle, load_gradcam=False, population_check="off")
    probabilities, tensors = score_site(predictor, films)
    labels = np.asarray(films.labels)
    logits = mean_logits(probabilities, card.calibration.slope, card.calibration.bias)
    counts = films.counts()
    described = f"site films ({counts['NORMAL']} NORMAL, {counts['PNEUMONIA']} PNEUMONIA)"
    record = {"source": films.source, "counts": counts, "films_sha256": films.sha256()}
    # The site's own inputs, and their mirror images when a small site has too few.
    parity = np.stack(tensors)
    if len(parity) < MIN_PARITY_IMAGES:
        parity = np.concatenate([parity, parity[:, :, ::-1]])
    return write_recalibrated(
        bundle, logits, labels, probabilities, described, record, parity, out_dir,
        false_negative_cost, folds,
    )  # fmt: skip


def check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        raise SiteDataError(f"{out_dir} exists and is not empty; choose a new folder")


def recalibratable(model_dir: Path) -> ModelBundle:
    bundle = ModelBundle.load(model_dir)
    if bundle.card.calibration is None or bundle.card.ood is None:
        raise SiteDataError("this bundle has no calibration or guard to re-fit (an old bundle)")
    return bundle


def carried_files(bundle: ModelBundle) -> tuple[Path, ...]:
    """Files a recalibrated bundle keeps as they are (same networks): the population check and
    monitoring's reference."""
    card = bundle.card
    check = card.population.check if card.population else None
    names = [check.file] if check else []
    if card.monitoring is not None:
        names.append(card.monitoring.file)
    return tuple(bundle.directory / name for name in names)


def write_recalibrated(
    bundle: ModelBundle,
    logits: np.ndarray,
    labels: np.ndarray,
    before: np.ndarray,
    described: str,
    site_record: dict[str, Any],
    parity: np.ndarray,
    out_dir: Path,
    false_negative_cost: float | None = None,
    folds: int = FOLDS,
) -> Path:
    """Fit Platt on (logits, labels), report before/after cross-validated, and write the bundle
    with the new calibration into out_dir (staged beside it, renamed into place at the end)."""
    card = bundle.card
    cost = false_negative_cost or card.threshold.false_negative_cost or 1.0
    report = cross_validated(logits, labels, before, bundle.threshold, cost, folds)
    slope, bias = fit_platt(logits, labels)
    calibration = card.calibration.model_copy(
        update={
            "slope": slope,
            "bias": bias,
            "fitted_on": described,
            "metrics": {
                "ece_10_bins_before": report["before"]["ece_10_bins"],
                "ece_10_bins_after_cross_validated": report["after"]["ece_10_bins"],
            },
        }
    )
    threshold = expected_cost_threshold(calibration, labels, described, cost)
    model = bundle.keras_model()
    model.get_layer(CALIBRATION_LAYER).set_weights(
        [np.array([[slope]], np.float32), np.array([bias], np.float32)]
    )
    guard = OodGuard.load(bundle.directory, card.ood)
    site_record = {
        **site_record,
        "recalibrated_from": card.version,
        "rule": threshold.method,
        "previous_calibration": {"slope": card.calibration.slope, "bias": card.calibration.bias},
        "previous_threshold": bundle.threshold,
        "cross_validated": {k: report[k] for k in ("folds", "before", "after")},
    }
    extra = {
        "population": card.population,
        "monitoring": card.monitoring,
        "data": {**card.data, "site_calibration": site_record},
        "training": card.training,
        "metrics": {**card.metrics, "site_cross_validated": report["after"]},
    }
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        export_bundle(
            ServingGraph(model, card.gradcam, ()),
            staging,
            bundle.preprocessing,
            parity,
            threshold,
            calibration,
            guard,
            extra,
            carried_files=carried_files(bundle),
        )
        report_dir = staging / "site_calibration"
        report_dir.mkdir()
        (report_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        plot_reliability_before_after(
            report["reliability_before"],
            report["reliability_after"],
            report_dir / "reliability.png",
        )
        (report_dir / "report.md").write_text(report_markdown(site_record, report))
        if out_dir.exists():
            out_dir.rmdir()
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("site-calibrated bundle written to %s", out_dir)
    return out_dir


def _pct(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def report_markdown(site: dict[str, Any], report: dict[str, Any]) -> str:
    """Before/after, cross-validated, as a table the docs and the site's IT can read."""
    before, after = report["before"], report["after"]
    rows = [
        ("threshold", f"{before['threshold']:.3f}", f"{after['threshold']:.3f}"),
        ("ECE (10 bins)", f"{before['ece_10_bins']:.3f}", f"{after['ece_10_bins']:.3f}"),
        ("Brier", f"{before['brier']:.3f}", f"{after['brier']:.3f}"),
        ("accuracy", _pct(before["accuracy"]), _pct(after["accuracy"])),
        ("sensitivity", _pct(before["sensitivity"]), _pct(after["sensitivity"])),
        ("specificity", _pct(before["specificity"]), _pct(after["specificity"])),
        ("ROC AUC", f"{before['roc_auc']:.4f}", f"{after['roc_auc']:.4f}"),
    ]
    lines = [
        f"Site calibration of {site['recalibrated_from']} on {site['source']} "
        f"({site['counts']['NORMAL']} NORMAL, {site['counts']['PNEUMONIA']} PNEUMONIA), "
        f"{report['folds']}-fold cross-validated: each film judged by a calibration fitted "
        "without it.",
        "",
        "| | before | after |",
        "| --- | --- | --- |",
        *(f"| {name} | {b} | {a} |" for name, b, a in rows),
        "",
    ]
    return "\n".join(lines)
