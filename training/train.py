"""Fit the CNN on cached, preprocessed images; choose the threshold on validation; export."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from imaging import PreprocessingParams
from training.data import EnhancedImages, enhance_files, load_splits
from training.export import export_bundle, keras_probabilities
from training.metrics import classification_metrics, youden_threshold
from training.model import build_augmenter, build_cnn
from training.settings import TrainSettings

log = logging.getLogger(__name__)


def to_unit_float(images: tf.Tensor, params: PreprocessingParams) -> tf.Tensor:
    """uint8 (..., S, S) -> float32 (..., S, S, 1): the same multiply as `imaging.scale_to_unit`."""
    return tf.expand_dims(tf.cast(images, tf.float32) * np.float32(params.scale), -1)


def training_dataset(
    data: EnhancedImages, params: PreprocessingParams, settings: TrainSettings
) -> tf.data.Dataset:
    """Shuffled batches; each epoch takes one random variant per image, then augments."""
    n_variants = data.images.shape[1]
    augment = build_augmenter(
        settings.rotation_degrees, settings.zoom, settings.shift, settings.seed
    )

    def pick_variant(variants: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        index = tf.random.uniform((), 0, n_variants, dtype=tf.int32, seed=settings.seed)
        return variants[index], label

    ds = tf.data.Dataset.from_tensor_slices((data.images, data.labels.astype(np.float32)))
    ds = ds.shuffle(len(data.labels), seed=settings.seed, reshuffle_each_iteration=True)
    ds = ds.map(pick_variant, num_parallel_calls=tf.data.AUTOTUNE).batch(settings.batch_size)
    ds = ds.map(
        lambda x, y: (augment(to_unit_float(x, params), training=True), y),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return ds.prefetch(tf.data.AUTOTUNE)


def upload_path_view(data: EnhancedImages) -> tuple[np.ndarray, np.ndarray]:
    """Every simulated-upload variant (1..V-1) as its own example; variant 0 if there are none."""
    images = data.images[:, 1:] if data.images.shape[1] > 1 else data.images
    n, v = images.shape[:2]
    return images.reshape(n * v, *images.shape[2:]), np.repeat(data.labels, v)


def class_weights(labels: np.ndarray) -> dict[int, float]:
    counts = np.bincount(labels.astype(int), minlength=2)
    return {i: float(len(labels) / (2 * max(c, 1))) for i, c in enumerate(counts)}


def _limit(files, per_class: int):
    if per_class <= 0:
        return files
    labels = np.asarray(files.labels)
    keep = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in (0, 1)])
    return files.subset(np.sort(keep))


def train(
    data_dir: Path,
    out_dir: Path,
    settings: TrainSettings,
    params: PreprocessingParams | None = None,
    run_dir: Path | None = None,
    cache_dir: Path | None = None,
) -> Path:
    """Train, pick the threshold on the validation uploads, export the bundle; return its path."""
    params = params or PreprocessingParams()
    run_dir = Path(run_dir or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    run_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(settings.seed)

    splits = load_splits(data_dir, settings.val_fraction, seed=settings.seed)
    splits.train = _limit(splits.train, settings.limit_per_class)
    splits.val = _limit(splits.val, settings.limit_per_class)
    n_variants = 1 + settings.upload_variants
    train_data = enhance_files(
        splits.train, params, n_variants, settings.seed, cache_dir, desc="train"
    )
    val_data = enhance_files(
        splits.val, params, n_variants, settings.seed + 1, cache_dir, desc="val"
    )
    skipped = train_data.skipped + val_data.skipped

    val_x, val_y = upload_path_view(val_data)
    val_x = to_unit_float(val_x, params).numpy()
    model = build_cnn(params.image_size)
    model.compile(
        optimizer=keras.optimizers.Adam(settings.learning_rate),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")],
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
        training_dataset(train_data, params, settings),
        validation_data=(val_x, val_y.astype(np.float32)),
        epochs=settings.epochs,
        class_weight=class_weights(train_data.labels),
        shuffle=False,  # the dataset reshuffles itself every epoch
        callbacks=callbacks,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    seconds = time.perf_counter() - started
    epochs_run = len(history.history["loss"])
    images_per_second = epochs_run * len(train_data.labels) / seconds
    log.info("trained %d epochs in %.0f s (%.1f images/s)", epochs_run, seconds, images_per_second)

    best = keras.saving.load_model(best_path, compile=False) if best_path.exists() else model
    val_prob = keras_probabilities(best, val_x)
    threshold_value = youden_threshold(val_y, val_prob)
    val_clean = to_unit_float(val_data.images[:, 0], params).numpy()
    val_clean_prob = keras_probabilities(best, val_clean)
    threshold = {
        "value": threshold_value,
        "method": "Youden's J (max sensitivity + specificity - 1)",
        "chosen_on": (
            f"validation split ({len(val_data.labels)} images), each as "
            f"{max(1, settings.upload_variants)} simulated full-resolution uploads"
        ),
    }
    card_extra = {
        "metrics": {
            "validation_uploads": classification_metrics(val_y, val_prob, threshold_value),
            "validation_as_files": classification_metrics(
                val_data.labels, val_clean_prob, threshold_value
            ),
        },
        "data": {
            "source": str(Path(data_dir).name),
            "splits": splits.summary(),
            "skipped_files": [f"{p.name}: {why}" for p, why in skipped],
        },
        "training": {
            **asdict(settings),
            "epochs_run": epochs_run,
            "best_epoch": int(np.argmax(history.history["val_auc"])) + 1,
            "seconds": round(seconds, 1),
            "images_per_second": round(images_per_second, 1),
            "parameters": int(best.count_params()),
        },
    }
    parity_images = np.concatenate([val_clean, val_x])[:256]
    bundle = export_bundle(best, out_dir, params, parity_images, threshold, card_extra)
    shutil.copy(run_dir / "training_log.csv", Path(out_dir) / "training_log.csv")
    log.info("bundle %s written to %s", bundle.version, out_dir)
    log.info("validation (uploads): %s", json.dumps(card_extra["metrics"]["validation_uploads"]))
    return Path(out_dir)
