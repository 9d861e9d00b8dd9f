"""Find a Kaggle-layout data set, split it, and turn every image into cached model inputs.

Layout: DATA_DIR/{train,val,test}/{NORMAL,PNEUMONIA}/*.{jpg,jpeg,png,dcm}, folder names matched
without regard to case (DICOM files without a suffix are found by their bytes). Each image goes
through the shared chain (`imaging`) once, not once per epoch; the enhanced 150x150 uint8 pictures
are cached on disk keyed by file hashes and the chain's parameters.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from imaging import ImageError, PreprocessingParams, enhance_bytes, is_image_file
from training.settings import TrainSettings
from training.upload_simulation import invisible_twin, simulate_upload

log = logging.getLogger(__name__)

CLASS_NAMES = ("NORMAL", "PNEUMONIA")  # label 0, label 1
SPLITS = ("train", "val", "test")


@dataclass
class LabelledFiles:
    """Image paths and their labels (0 NORMAL, 1 PNEUMONIA)."""

    paths: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def class_counts(self) -> dict[str, int]:
        counts = Counter(self.labels)
        return {name: counts.get(i, 0) for i, name in enumerate(CLASS_NAMES)}

    def list_sha256(self) -> str:
        """A hash of the file list: each file's class, name and content hash, in sorted order, so
        two folders holding the same films under the same labels give the same hash."""
        rows = sorted(
            f"{CLASS_NAMES[label]}/{path.name}:{hashlib.sha256(path.read_bytes()).hexdigest()}"
            for path, label in zip(self.paths, self.labels, strict=True)
        )
        return hashlib.sha256("\n".join(rows).encode()).hexdigest()

    def subset(self, indices: np.ndarray) -> LabelledFiles:
        return LabelledFiles([self.paths[i] for i in indices], [self.labels[i] for i in indices])

    def limit(self, per_class: int) -> LabelledFiles:
        """The first `per_class` files of each class (all of them when 0)."""
        if per_class <= 0:
            return self
        labels = np.asarray(self.labels)
        keep = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in (0, 1)])
        return self.subset(np.sort(keep))


def _child_dir(parent: Path, name: str) -> Path | None:
    """The child folder of `parent` called `name`, compared without regard to case."""
    if not parent.is_dir():
        return None
    matches = [p for p in sorted(parent.iterdir()) if p.is_dir() and p.name.lower() == name.lower()]
    return matches[0] if matches else None


def list_split(data_dir: Path, split: str) -> LabelledFiles:
    """Every image file of one split, sorted for reproducibility; empty if the split is absent."""
    files = LabelledFiles()
    split_dir = _child_dir(data_dir, split)
    if split_dir is None:
        return files
    for label, class_name in enumerate(CLASS_NAMES):
        class_dir = _child_dir(split_dir, class_name)
        if class_dir is None:
            continue
        for path in sorted(class_dir.rglob("*")):
            if path.is_file() and is_image_file(path):
                files.paths.append(path)
                files.labels.append(label)
    return files


def carve_validation(
    train: LabelledFiles, fraction: float, seed: int
) -> tuple[LabelledFiles, LabelledFiles]:
    """Stratified, seeded split of `train` into (train, validation)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(train.labels)
    val_idx: list[int] = []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        rng.shuffle(idx)
        n_val = max(1, round(len(idx) * fraction))
        val_idx.extend(idx[:n_val].tolist())
    val_mask = np.zeros(len(labels), dtype=bool)
    val_mask[val_idx] = True
    return train.subset(np.flatnonzero(~val_mask)), train.subset(np.flatnonzero(val_mask))


@dataclass
class DatasetSplits:
    train: LabelledFiles
    val: LabelledFiles
    test: LabelledFiles
    val_carved: bool

    def summary(self) -> dict:
        """Counts per class of each split, and a hash of each split's file list (what a model
        was trained, selected and tested on, in the card)."""
        return {
            "train": self.train.class_counts(),
            "val": self.val.class_counts(),
            "test": self.test.class_counts(),
            "val_carved_from_train": self.val_carved,
            "file_list_sha256": {
                name: getattr(self, name).list_sha256() for name in ("train", "val", "test")
            },
        }


def load_splits(
    data_dir: Path, val_fraction: float = 0.15, min_val_images: int = 100, seed: int = 42
) -> DatasetSplits:
    """Read the layout; carve a validation split out of train when val/ is missing or tiny."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data directory not found: {data_dir}")
    train, val, test = (list_split(data_dir, s) for s in SPLITS)
    if len(train) == 0:
        raise FileNotFoundError(
            f"no training images under {data_dir}/train/{{NORMAL,PNEUMONIA}} "
            f"(expected *.jpg, *.jpeg or *.png)"
        )
    if len(set(train.labels)) < 2:
        raise ValueError(f"training data needs both classes, found {train.class_counts()}")
    carved = len(val) < min_val_images or len(set(val.labels)) < 2
    if carved:
        train, val = carve_validation(train, val_fraction, seed)
        log.info(
            "val/ has %d images (< %d): carved a stratified %.0f%% validation split out of train "
            "(seed %d) instead",
            len(list_split(data_dir, "val")),
            min_val_images,
            val_fraction * 100,
            seed,
        )
    splits = DatasetSplits(train, val, test, carved)
    for name in SPLITS:
        log.info("%-5s %s", name, getattr(splits, name).class_counts())
    return splits


# ---------------------------------------------------------------- preprocessing with a disk cache


@dataclass
class EnhancedImages:
    """Enhanced uint8 pictures (N, V, S, S): variant 0 is the file itself, 1.. simulated uploads."""

    images: np.ndarray
    labels: np.ndarray
    paths: list[Path]
    skipped: list[tuple[Path, str]]
    twins: np.ndarray | None = None  # (N, V, S, S): each variant after an invisible change


def _enhance_one(
    args: tuple[str, PreprocessingParams, int, int, bool],
) -> tuple[np.ndarray | None, str]:
    """(V, S, S) variants, or (2, V, S, S) with their invisible twins; None and why if unread."""
    path, params, n_variants, seed, twins = args
    try:
        data = Path(path).read_bytes()
        rng = np.random.default_rng(seed)
        encoded = [data] + [simulate_upload(data, rng) for _ in range(n_variants - 1)]
        variants = np.stack([enhance_bytes(e, params) for e in encoded])
        if twins:
            paired = np.stack([invisible_twin(e, params, rng) for e in encoded])
            return np.stack([variants, paired]), ""
        return variants, ""
    except (ImageError, OSError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def _cache_key(
    files: LabelledFiles, params: PreprocessingParams, n_variants: int, seed: int, twins: bool
) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(params.to_dict(), sort_keys=True).encode())
    digest.update(f"{n_variants}:{seed}:{twins}:v4".encode())
    for path in files.paths:
        stat = path.stat()
        digest.update(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def enhance_files(
    files: LabelledFiles,
    params: PreprocessingParams,
    n_variants: int = 1,
    seed: int = 0,
    cache_dir: Path | None = None,
    workers: int = 2,
    desc: str = "preprocess",
    twins: bool = False,
) -> EnhancedImages:
    """Run the shared chain over every file once (plus simulated uploads and, with `twins`, their
    invisible twins), reporting bad files."""
    cache_file = None
    if cache_dir is not None:
        key = _cache_key(files, params, n_variants, seed, twins)
        cache_file = Path(cache_dir) / f"{desc}-{key}.npz"
        if cache_file.exists():
            cached = np.load(cache_file, allow_pickle=False)
            keep = cached["keep"]
            skipped = [
                (files.paths[i], str(r)) for i, r in zip(cached["bad"], cached["why"], strict=True)
            ]
            log.info("%s: loaded %d cached images from %s", desc, int(keep.size), cache_file)
            return EnhancedImages(
                cached["images"],
                np.asarray(files.labels)[keep],
                [files.paths[i] for i in keep],
                skipped,
                cached.get("twins"),
            )
    jobs = [
        (str(p), params, n_variants, seed * 1_000_003 + i, twins) for i, p in enumerate(files.paths)
    ]
    results: list[tuple[np.ndarray | None, str]] = []
    if workers > 1 and len(jobs) > 8:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(
                tqdm(pool.map(_enhance_one, jobs, chunksize=16), total=len(jobs), desc=desc)
            )
    else:
        results = [_enhance_one(job) for job in tqdm(jobs, desc=desc)]
    keep = [i for i, (img, _) in enumerate(results) if img is not None]
    bad = [i for i, (img, _) in enumerate(results) if img is None]
    for i in bad:
        log.warning("skipped unreadable image %s (%s)", files.paths[i], results[i][1])
    size = params.image_size
    shape = (0, 2, n_variants, size, size) if twins else (0, n_variants, size, size)
    stacked = np.stack([results[i][0] for i in keep]) if keep else np.zeros(shape, np.uint8)
    images, paired = (stacked[:, 0], stacked[:, 1]) if twins else (stacked, None)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        extra = {"twins": paired} if paired is not None else {}
        np.savez(
            cache_file,
            images=images,
            keep=np.asarray(keep, dtype=np.int64),
            bad=np.asarray(bad, dtype=np.int64),
            why=np.asarray([results[i][1] for i in bad], dtype=str),
            **extra,
        )
    return EnhancedImages(
        images,
        np.asarray(files.labels, dtype=np.int64)[keep],
        [files.paths[i] for i in keep],
        [(files.paths[i], results[i][1]) for i in bad],
        paired,
    )


def prepare_splits(
    data_dir: Path,
    params: PreprocessingParams,
    settings: TrainSettings,
    cache_dir: Path | None = None,
) -> tuple[DatasetSplits, EnhancedImages, EnhancedImages]:
    """The split, and the enhanced (cached) training and validation images every member and the
    assembly share: same `split_seed`, same cache; invisible twins when training asks for
    consistency; `limit_per_class` > 0 keeps that many images per class (quick trials)."""
    seed = settings.split_seed
    splits = load_splits(data_dir, settings.val_fraction, seed=seed)
    splits.train = splits.train.limit(settings.limit_per_class)
    splits.val = splits.val.limit(settings.limit_per_class)
    variants, twins = 1 + settings.upload_variants, settings.consistency > 0
    train = enhance_files(
        splits.train, params, variants, seed, cache_dir, desc="train", twins=twins
    )
    val = enhance_files(splits.val, params, variants, seed + 1, cache_dir, desc="val", twins=twins)
    return splits, train, val
