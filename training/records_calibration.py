"""`python -m training calibrate --from-records DATABASE_URL`: re-fit the calibration from the
service's own record: the networks' mean logit of every answer a reader gave a verdict on.

No films are needed: the record keeps each answer's mean logit before calibration. The same
refusals as calibrating from a folder apply (both classes, at least 10 of each). Before anything
is written, the verdicts are split in two halves (stratified, seeded): a calibration fitted on
one half is judged on the other, ECE before and after, and that is reported; the bundle is then
fitted on all of them, as `calibrate` does.

ONNX-against-Keras parity needs model inputs, and a record has no pixels: it is checked on
smooth synthetic images instead (the card says so).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from sklearn.model_selection import StratifiedShuffleSplit

from engine import ModelBundle
from engine.card import ModelCard
from engine.records import RecordStore
from engine.records.store import redacted
from training.calibration import expected_calibration_error, fit_platt, sigmoid
from training.data import CLASS_NAMES
from training.export import MIN_PARITY_IMAGES
from training.site_calibration import (
    SiteDataError,
    SiteFilms,
    check_counts,
    check_out_dir,
    recalibratable,
    write_recalibrated,
)

log = logging.getLogger(__name__)
HELD_OUT = 0.5


def lineage(card: ModelCard) -> set[str]:
    """Versions whose records carry this bundle's networks: itself and what it was
    recalibrated from."""
    versions = {card.version}
    earlier = (card.data or {}).get("site_calibration", {}).get("recalibrated_from")
    if earlier:
        versions.add(earlier)
    return versions


def synthetic_inputs(shape: tuple[int, int, int], count: int = 2 * MIN_PARITY_IMAGES) -> np.ndarray:
    """Smooth random images in [0, 1] (blurred noise at several scales): inputs for the parity
    check where no films are at hand."""
    rng = np.random.default_rng(0)
    size = shape[0]
    images = []
    for _ in range(count):
        picture = np.zeros((size, size), np.float32)
        for scale in (4, 16, 64):
            noise = rng.random((max(2, size // scale),) * 2).astype(np.float32)
            picture += cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
        picture -= picture.min()
        images.append(picture / max(float(picture.max()), 1e-6))
    return np.stack(images)[..., np.newaxis]


def held_out_ece(logits: np.ndarray, labels: np.ndarray, before: np.ndarray) -> dict[str, Any]:
    """Fit on one half, judge ECE before and after on the other."""
    split = StratifiedShuffleSplit(n_splits=1, test_size=HELD_OUT, random_state=0)
    fit, judged = next(split.split(logits.reshape(-1, 1), labels))
    slope, bias = fit_platt(logits[fit], labels[fit])
    after = sigmoid(slope * logits[judged] + bias)
    return {
        "fitted_on": len(fit),
        "judged": len(judged),
        "ece_10_bins_before": expected_calibration_error(before[judged], labels[judged]),
        "ece_10_bins_after": expected_calibration_error(after, labels[judged]),
    }


def labelled_logits(store: RecordStore, bundle: ModelBundle) -> tuple[list[dict], np.ndarray]:
    versions = lineage(bundle.card)
    rows = [
        r
        for r in store.labelled()
        if r["model_version"] in versions and r["mean_logit"] is not None
    ]
    labels = np.asarray([CLASS_NAMES.index(r["verdict"]) for r in rows], int)
    return rows, labels


def calibrate_from_records(
    url: str, model_dir: Path, out_dir: Path, false_negative_cost: float | None = None
) -> tuple[Path, dict[str, Any]]:
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    check_out_dir(out_dir)
    bundle = recalibratable(model_dir)
    store = RecordStore(url)
    try:
        rows, labels = labelled_logits(store, bundle)
    except Exception as exc:
        raise SiteDataError(f"cannot read the records in {redacted(url)}: {exc}") from exc
    finally:
        store.dispose()
    films = SiteFilms(source=f"records in {redacted(url)}", labels=labels.tolist())
    check_counts(films)
    logits = np.asarray([r["mean_logit"] for r in rows], np.float64)
    calibration = bundle.card.calibration
    before = sigmoid(calibration.slope * logits + calibration.bias)
    held_out = held_out_ece(logits, labels, before)
    digest = hashlib.sha256(
        "\n".join(sorted(f"{r['request_id']}:{r['verdict']}" for r in rows)).encode()
    ).hexdigest()
    counts = films.counts()
    record = {
        "source": films.source,
        "counts": counts,
        "records_sha256": digest,
        "held_out": held_out,
        "parity_inputs": "smooth synthetic images (a record holds no pixels)",
    }
    described = (
        f"readers' verdicts on recorded answers ({counts['NORMAL']} NORMAL, "
        f"{counts['PNEUMONIA']} PNEUMONIA)"
    )
    parity = synthetic_inputs(bundle.preprocessing.input_shape)
    path = write_recalibrated(
        bundle, logits, labels, before, described, record, parity, out_dir, false_negative_cost
    )
    return path, held_out
