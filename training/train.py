"""Fit the member networks on cached, preprocessed images, then assemble and export the bundle.

One split and one cache serve every member (`split_seed`), so the members of an ensemble are chosen
on the same validation films; each member differs only in its seed (initial weights, augmentation
and batch order). Assembly (training/assemble.py) calibrates, chooses the threshold and fits the
out-of-distribution guard on that validation split, never on the test split.
"""

from __future__ import annotations

import csv
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from imaging import PreprocessingParams
from training.assemble import assemble_bundle
from training.augment import occlude_borders, paste_markers
from training.data import EnhancedImages, prepare_splits
from training.distill import teacher_targets
from training.model import build_augmenter, build_cnn
from training.monitoring_reference import add_monitoring_reference
from training.settings import TrainSettings

log = logging.getLogger(__name__)


def to_unit_float(images: tf.Tensor, params: PreprocessingParams) -> tf.Tensor:
    """uint8 (..., S, S) -> float32 (..., S, S, 1): the same multiply as `imaging.scale_to_unit`."""
    return tf.expand_dims(tf.cast(images, tf.float32) * np.float32(params.scale), -1)


def training_dataset(
    data: EnhancedImages,
    params: PreprocessingParams,
    settings: TrainSettings,
    seed: int,
    targets: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Shuffled, augmented (x, target, class weight) batches; each epoch shows each image as one
    random cached variant. The target is the label, or `targets` (a teacher's, one per image).

    With consistency on, each variant comes with its invisible twin: both get the same geometric
    augmentation and sit in rows 2k and 2k+1 of the batch, for the consistency term of the loss.
    """
    n_variants = data.images.shape[1]
    augment = build_augmenter(
        settings.rotation_degrees, settings.zoom, settings.shift, settings.noise_std, seed
    )
    paired = settings.consistency > 0 and data.twins is not None
    size = params.image_size

    def pick(variants: tf.Tensor, twins: tf.Tensor, target: tf.Tensor, weight: tf.Tensor):
        index = tf.random.uniform((), 0, n_variants, dtype=tf.int32, seed=seed)
        return tf.stack([variants[index], twins[index]], axis=-1), target, weight

    def augment_batch(x: tf.Tensor, y: tf.Tensor, w: tf.Tensor):
        x = augment(tf.cast(x, tf.float32) * np.float32(params.scale), training=True)
        x = paste_markers(occlude_borders(x, settings.border_erase_rate), settings.marker_rate)
        if paired:  # (B, S, S, 2) -> rows 2k, 2k+1 = the pair
            x = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), (-1, size, size, 1))
            y, w = tf.repeat(y, 2), tf.repeat(w, 2)
        return x, y, w

    labels = data.labels.astype(np.int64)
    weight_of = class_weights(labels)
    weights = np.asarray([weight_of[int(c)] for c in labels], dtype=np.float32)
    y = (labels if targets is None else targets).astype(np.float32)
    twins = data.twins if paired else data.images
    ds = tf.data.Dataset.from_tensor_slices((data.images, twins, y, weights))
    ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(pick, num_parallel_calls=tf.data.AUTOTUNE)
    if not paired:
        ds = ds.map(lambda x, y, w: (x[..., :1], y, w))
    batch = settings.batch_size // 2 if paired else settings.batch_size
    ds = ds.batch(batch, drop_remainder=paired).map(augment_batch, tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def logit_loss(consistency: float):
    """Cross-entropy on logits, plus `consistency` x the squared logit gap between each upload and
    its invisible twin (rows 2k, 2k+1) when training on pairs."""
    if consistency <= 0:
        return keras.losses.BinaryCrossentropy(from_logits=True)
    bce = keras.losses.BinaryCrossentropy(from_logits=True, reduction=None)

    def loss(y_true: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        pairs = tf.reshape(logits, (-1, 2))
        gap = tf.square(pairs[:, 0] - pairs[:, 1])
        return bce(y_true, logits) + consistency * tf.repeat(gap, 2)

    return loss


def validation_set(data: EnhancedImages) -> tuple[np.ndarray, np.ndarray]:
    """The simulated uploads of every validation image (what selection scores); with twins, each
    followed by its twin, so the consistency term of the validation loss is meaningful too."""
    uploads = data.images[:, 1:] if data.images.shape[1] > 1 else data.images
    if data.twins is not None:
        twins = data.twins[:, 1:] if data.twins.shape[1] > 1 else data.twins
        uploads = np.stack([uploads, twins], axis=2)  # (N, V, 2, S, S)
    per_image = int(np.prod(uploads.shape[1:-2]))
    return uploads.reshape(-1, *uploads.shape[-2:]), np.repeat(data.labels, per_image)


class _OnRoundedTarget:
    """A metric read against the label a soft (teacher's) target stands for: Keras's AUC counts any
    target above 0 as positive and a soft target never equals a 0/1 prediction, which would make
    the training curve meaningless when distilling."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(keras.ops.round(y_true), y_pred, sample_weight)


class RoundedTargetAUC(_OnRoundedTarget, keras.metrics.AUC):
    pass


class RoundedTargetAccuracy(_OnRoundedTarget, keras.metrics.BinaryAccuracy):
    pass


def class_weights(labels: np.ndarray) -> dict[int, float]:
    counts = np.bincount(labels.astype(int), minlength=2)
    return {i: float(len(labels) / (2 * max(c, 1))) for i, c in enumerate(counts)}


def fit_member(
    train_data: EnhancedImages,
    val_x: np.ndarray,
    val_y: np.ndarray,
    params: PreprocessingParams,
    settings: TrainSettings,
    seed: int,
    run_dir: Path,
    targets: np.ndarray | None = None,
) -> tuple[keras.Model, dict]:
    """Train one member network (image -> logit) on the labels, or on a teacher's `targets`; the
    best epoch by validation AUC (against the labels) is kept."""
    run_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    model = build_cnn(params.image_size)
    model.compile(
        optimizer=keras.optimizers.Adam(settings.learning_rate),
        loss=logit_loss(settings.consistency),
        metrics=[
            RoundedTargetAUC(name="auc", from_logits=True),
            RoundedTargetAccuracy(name="accuracy", threshold=0.0),
        ],
    )
    best_path = run_dir / "best.keras"
    callbacks = [
        keras.callbacks.ModelCheckpoint(
            best_path, monitor="val_auc", mode="max", save_best_only=True
        ),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard")),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_auc", mode="max", factor=0.5, patience=settings.lr_patience, min_lr=1e-5
        ),
        keras.callbacks.EarlyStopping(
            monitor="val_auc",
            mode="max",
            patience=settings.early_stop_patience,
            restore_best_weights=True,
        ),
        # Last, so that the learning rate ReduceLROnPlateau puts in the logs is written too.
        keras.callbacks.CSVLogger(str(run_dir / "training_log.csv")),
    ]
    started = time.perf_counter()
    history = model.fit(
        training_dataset(train_data, params, settings, seed, targets),
        validation_data=(val_x, val_y.astype(np.float32)),
        epochs=settings.epochs,
        shuffle=False,  # the dataset reshuffles itself every epoch
        callbacks=callbacks,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    seconds = time.perf_counter() - started
    epochs_run = len(history.history["loss"])
    pairs = 2 if settings.consistency > 0 and train_data.twins is not None else 1
    images_per_second = epochs_run * len(train_data.labels) * pairs / seconds
    log.info(
        "member seed %d: %d epochs in %.0f s (%.1f images/s), best validation AUC %.4f",
        seed,
        epochs_run,
        seconds,
        images_per_second,
        max(history.history["val_auc"]),
    )
    best = keras.saving.load_model(best_path, compile=False) if best_path.exists() else model
    summary = {
        "seed": seed,
        "epochs_run": epochs_run,
        "best_epoch": int(np.argmax(history.history["val_auc"])) + 1,
        "best_validation_auc": round(float(max(history.history["val_auc"])), 5),
        "seconds": round(seconds, 1),
        "images_per_second": round(images_per_second, 1),
    }
    return best, summary


def train(
    data_dir: Path,
    out_dir: Path,
    settings: TrainSettings,
    params: PreprocessingParams | None = None,
    run_dir: Path | None = None,
    cache_dir: Path | None = None,
) -> Path:
    """Train `settings.members` networks, assemble and export the bundle; return its path."""
    params = params or PreprocessingParams()
    run_dir = Path(run_dir or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    run_dir.mkdir(parents=True, exist_ok=True)

    splits, train_data, val_data = prepare_splits(data_dir, params, settings, cache_dir)
    val_x, val_y = validation_set(val_data)
    val_x = to_unit_float(val_x, params).numpy()

    targets, teacher = None, None
    if settings.teacher:
        targets, teacher = teacher_targets(Path(settings.teacher), train_data, params)

    members, summaries = [], []
    started = time.perf_counter()
    for k in range(settings.members):
        member_dir = run_dir / f"member{k}"
        model, summary = fit_member(
            train_data, val_x, val_y, params, settings, settings.seed + k, member_dir, targets
        )
        members.append(model)
        summaries.append(summary)
    training_seconds = time.perf_counter() - started

    extra = {
        "data": {
            "source": str(Path(data_dir).name),
            "splits": splits.summary(),
            "skipped_files": [
                f"{p.name}: {why}" for p, why in train_data.skipped + val_data.skipped
            ],
        },
        "training": {
            **asdict(settings),
            "member_runs": summaries,
            "seconds": round(training_seconds, 1),
            "parameters_per_member": int(members[0].count_params()),
            **({"distilled_from": teacher.to_dict()} if teacher else {}),
        },
    }
    assemble_bundle(members, out_dir, params, settings, train_data, val_data, extra)
    add_monitoring_reference(out_dir, data_dir)  # what monitoring compares a deployment with
    combine_logs(
        [run_dir / f"member{k}" / "training_log.csv" for k in range(settings.members)],
        Path(out_dir) / "training_log.csv",
    )
    log.info("bundle written to %s", out_dir)
    return Path(out_dir)


def combine_logs(logs: list[Path], out: Path) -> None:
    """The members' per-epoch logs in one CSV, with a `member` column."""
    rows = []
    for k, path in enumerate(logs):
        if path.exists():
            with open(path, newline="") as handle:
                rows += [{"member": k, **row} for row in csv.DictReader(handle)]
    if rows:
        with open(out, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
