"""Fit the population check: does a film look like an adult's rather than a young child's?

The check reads the ensemble's pooled features (the `ood_features` output the guard already
reads), so it costs one dot product per answer and no extra network. It is a logistic regression
of adults' films against the children's training films, both through the same heavy, random
processing (crops, exposure, blur or sharpening, noise, compression, the simulated-upload chain),
so that what separates them is the patient, not one source's post-processing. The direction in
which the children's NORMAL and PNEUMONIA films differ is projected out of the features first:
the adults at hand are all healthy, and the check must not learn "healthy" for "adult".

    python -m training population-check --model DIR --data-dir KAGGLE --adults FOLDER

The threshold is chosen on the validation split's children (a quantile of their scores), the
adults' rate is measured out of fold (grouped by film: a film's variants never straddle a fold),
and the method, threshold and rates go into the card's `population.check`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from engine import ModelBundle
from engine.population import PROBE_FILE, PopulationProbe
from imaging import ImageError, decode_grayscale, is_image_file, preprocess_bytes, probe_image
from training.upload_simulation import simulate_upload

log = logging.getLogger(__name__)

# Share of the validation children's variants the threshold may flag as "adult": none.
VALIDATION_FLAG_RATE = 0.0
# L2 strength of the logistic regression on standardised features (chosen on validation, see the
# model card page): strong, since 62 adults' films stand against two thousand features.
REGULARISATION_C = 0.01
FOLDS = 5


def heavy_variant(data: bytes, rng: np.random.Generator) -> bytes:
    """A random re-processing of an encoded film: crop, blur or sharpen, noise, then the upload
    simulation (size, aspect, gamma, contrast, JPEG or PNG). Applied alike to every class."""
    gray = decode_grayscale(data, probe_image(data))
    h, w = gray.shape
    keep_h, keep_w = rng.uniform(0.8, 1.0, size=2)
    top = int(rng.uniform(0, 1 - keep_h) * h)
    left = int(rng.uniform(0, 1 - keep_w) * w)
    gray = gray[top : top + int(keep_h * h), left : left + int(keep_w * w)]
    roll = rng.random()
    if roll < 0.3:
        gray = cv2.GaussianBlur(gray, (0, 0), rng.uniform(0.5, 1.5))
    elif roll < 0.5:
        soft = cv2.GaussianBlur(gray, (0, 0), 2.0)
        gray = cv2.addWeighted(gray, 1.0 + rng.uniform(0.3, 1.0), soft, -rng.uniform(0.3, 1.0), 0)
    if rng.random() < 0.3:
        noise = rng.normal(0, rng.uniform(2, 6), gray.shape)
        gray = np.clip(gray.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.2:
        gray = cv2.equalizeHist(gray)
    gamma = np.exp(rng.uniform(np.log(0.7), np.log(1.4)))
    lut = (255.0 * (np.arange(256) / 255.0) ** gamma).astype(np.uint8)
    gray = cv2.LUT(np.ascontiguousarray(gray), lut)
    encoded = cv2.imencode(".png", gray, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()
    return simulate_upload(encoded, rng)


@dataclass(frozen=True)
class FilmFeatures:
    """Pooled features of every variant of a set of films; `groups` says which film each is."""

    features: np.ndarray  # (variants, width) float32
    probabilities: np.ndarray  # (variants,) the served probability, for the checks
    groups: np.ndarray  # (variants,) index of the film in `files`
    files: list[Path]


def film_features(
    bundle: ModelBundle,
    files: list[Path],
    variants: int,
    seed: int,
    keep_original: bool = True,
    make_variant: Callable[[bytes, np.random.Generator], bytes] = heavy_variant,
    description: str = "films",
) -> FilmFeatures:
    """Features of each file as it is (when `keep_original`) and of `variants` random variants."""
    params = bundle.preprocessing
    feature_name = bundle.card.ood.feature_output if bundle.card.ood else "ood_features"
    probability_name = bundle.card.probability_output.name

    def tensors(index: int) -> list[np.ndarray]:
        data = files[index].read_bytes()
        rng = np.random.default_rng([seed, index])
        made = [data] if keep_original else []
        try:
            made += [make_variant(data, rng) for _ in range(variants)]
        except ImageError as exc:  # unreadable: the training data loader skips it too
            log.warning("skipped %s (%s)", files[index].name, exc)
            return []
        out = []
        for item in made:
            try:
                out.append(preprocess_bytes(item, params))
            except ImageError:
                continue
        return out

    features, probabilities, groups = [], [], []
    with ThreadPoolExecutor(max_workers=2) as pool:
        progress = tqdm(
            pool.map(tensors, range(len(files))), total=len(files), desc=description, leave=False
        )
        for index, batch in enumerate(progress):
            if not batch:
                continue
            outputs = bundle.run(np.stack(batch))
            features.append(outputs[feature_name])
            probabilities.append(outputs[probability_name].reshape(-1))
            groups.append(np.full(len(batch), index))
    return FilmFeatures(
        np.concatenate(features).astype(np.float32),
        np.concatenate(probabilities),
        np.concatenate(groups),
        files,
    )


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and is_image_file(p))


def disease_direction(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unit vector between the children's NORMAL and PNEUMONIA mean features (standardised)."""
    direction = features[labels == 1].mean(axis=0) - features[labels == 0].mean(axis=0)
    return direction / np.linalg.norm(direction)


def fit_probe(
    children: np.ndarray,
    children_labels: np.ndarray,
    adults: np.ndarray,
    c: float = REGULARISATION_C,
) -> PopulationProbe:
    """Logistic regression, adults (1) against children (0), classes weighted equally, on
    standardised features with the children's disease direction removed; folded into one
    weight vector and bias over the raw features (what the engine applies)."""
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([children, adults]).astype(np.float64)
    y = np.concatenate([np.zeros(len(children)), np.ones(len(adults))])
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-6
    z_children = (children - mean) / scale
    disease = disease_direction(z_children, children_labels)
    z = (x - mean) / scale
    z = z - np.outer(z @ disease, disease)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    model.fit(z, y)
    w = model.coef_[0]
    w = w - (w @ disease) * disease  # already orthogonal up to the solver's tolerance
    weights = w / scale
    bias = float(model.intercept_[0] - (mean / scale) @ w)
    return PopulationProbe(weights.astype(np.float64), bias)


def threshold_for(scores: np.ndarray, rate: float = VALIDATION_FLAG_RATE) -> float:
    """The lowest threshold that flags at most `rate` of these (children's) scores (a film is
    flagged at or above it)."""
    return float(np.nextafter(np.quantile(scores, 1.0 - rate), np.inf))


def out_of_fold_adult_scores(
    children: np.ndarray,
    children_labels: np.ndarray,
    adults: FilmFeatures,
    validation: np.ndarray,
    folds: int = FOLDS,
    c: float = REGULARISATION_C,
) -> tuple[np.ndarray, np.ndarray]:
    """Each adult film's variants scored by a probe fitted without that film, and each fold's
    threshold from the validation children: (scores, thresholds per variant)."""
    from sklearn.model_selection import GroupKFold

    scores = np.zeros(len(adults.features))
    thresholds = np.zeros(len(adults.features))
    for fit, judged in GroupKFold(n_splits=folds).split(adults.features, groups=adults.groups):
        probe = fit_probe(children, children_labels, adults.features[fit], c)
        scores[judged] = probe.scores(adults.features[judged])
        thresholds[judged] = threshold_for(probe.scores(validation))
    return scores, thresholds


def save_probe(probe: PopulationProbe, bundle_dir: Path) -> Path:
    path = Path(bundle_dir) / PROBE_FILE
    np.savez(path, weights=probe.weights, bias=np.float64(probe.bias))
    return path


REGULARISATION_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
ADULT_VARIANTS = 8
CHILD_VARIANTS = 1
VALIDATION_VARIANTS = 2


def split_settings(card) -> tuple[float, int]:
    """The validation carve the bundle was assembled with (its card's training record)."""
    training = card.training or {}
    return float(training.get("val_fraction", 0.15)), int(training.get("split_seed", 42))


def add_population_check(
    bundle_dir: Path,
    data_dir: Path,
    adults_dir: Path,
    grid: tuple[float, ...] = REGULARISATION_GRID,
    adult_variants: int = ADULT_VARIANTS,
) -> dict:
    """Fit the check on the bundle's training children and `adults_dir`, choose its strength
    and threshold on the validation children and the adults out of fold, and write it into the
    bundle (population_probe.npz and the card's population.check). Returns what was measured."""
    from engine.bundle import sha256_file
    from engine.card import ModelCard, PixelPopulationCheck
    from training.data import load_splits
    from training.upload_simulation import simulate_upload

    bundle_dir = Path(bundle_dir)
    bundle = ModelBundle.load(bundle_dir, intra_op_threads=2)
    card = bundle.card
    if card.population is None or card.ood is None:
        raise ValueError("the bundle's card has no population or no pooled features to read")
    val_fraction, seed = split_settings(card)
    splits = load_splits(Path(data_dir), val_fraction, seed=seed)
    adult_files = image_files(adults_dir)
    if len(adult_files) < 2 * FOLDS:
        raise ValueError(f"{adults_dir} holds {len(adult_files)} films; the check needs >= 10")
    children = film_features(bundle, splits.train.paths, CHILD_VARIANTS, 0, description="children")
    child_labels = np.asarray(splits.train.labels)[children.groups]
    validation = film_features(
        bundle,
        splits.val.paths,
        VALIDATION_VARIANTS,
        1,
        make_variant=simulate_upload,
        description="validation",
    )
    adults = film_features(bundle, adult_files, adult_variants, 2, description="adults")

    by_strength = {}
    for c in grid:
        scores, thresholds = out_of_fold_adult_scores(
            children.features, child_labels, adults, validation.features, c=c
        )
        flagged = scores >= thresholds
        originals = np.r_[True, np.diff(adults.groups) != 0]
        by_strength[c] = {
            "adults_flagged_out_of_fold": float(flagged.mean()),
            "adult_films_flagged_out_of_fold": float(flagged[originals].mean()),
        }
        log.info("C=%g: %s", c, by_strength[c])
    best = max(grid, key=lambda c: (by_strength[c]["adults_flagged_out_of_fold"], -c))
    probe = fit_probe(children.features, child_labels, adults.features, best)
    validation_scores = probe.scores(validation.features)
    threshold = threshold_for(validation_scores)
    path = save_probe(probe, bundle_dir)
    rates = {
        **by_strength[best],
        "adult_films": len(adult_files),
        "adult_variants_per_film": adult_variants,
        "validation_children_flagged": float((validation_scores >= threshold).mean()),
        "regularisation_c": best,
        "regularisation_grid": {str(c): v for c, v in by_strength.items()},
    }
    check = PixelPopulationCheck(
        method=(
            "logistic regression (L2, classes weighted equally) on the ensemble's standardised "
            "pooled features with the children's NORMAL-PNEUMONIA direction projected out; "
            "adults' and children's films alike through random crops, exposure, blur or "
            "sharpening, noise and the simulated-upload chain"
        ),
        file=path.name,
        feature_output=card.ood.feature_output,
        threshold=threshold,
        fitted_on=(
            f"training split children ({len(splits.train)} films, as files and "
            f"{CHILD_VARIANTS} random variant each) against {len(adult_files)} adults' films "
            f"({Path(adults_dir).name}, as files and {adult_variants} random variants each)"
        ),
        chosen_on=(
            "threshold: the highest score of the validation children "
            f"({len(splits.val)} films, as files and {VALIDATION_VARIANTS} simulated uploads "
            "each), so none of them is flagged; strength C: the most adults flagged out of fold "
            f"({FOLDS} folds grouped by film, each fold's threshold from the validation children)"
        ),
        rates=rates,
    )
    card = ModelCard.read(bundle_dir)
    population = card.population.model_copy(update={"check": check})
    card.model_copy(
        update={"population": population, "sha256": {**card.sha256, path.name: sha256_file(path)}}
    ).write(bundle_dir)
    return {"threshold": threshold, **rates}
