"""Training throughput (images/s) of the real model and input pipeline on real data.

python -m benchmarks.training_speed [--images 400] [--epochs 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import machine, write_result
from benchmarks.devdata import dev_data_root
from imaging import PreprocessingParams
from training.data import enhance_files, list_split
from training.model import build_cnn
from training.settings import TrainSettings
from training.train import logit_loss, training_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    params = PreprocessingParams()
    files = list_split(dev_data_root() / "chest_xray", "train")
    pick = np.random.default_rng(0).choice(len(files), args.images, replace=False)
    t0 = time.perf_counter()
    data = enhance_files(files.subset(np.sort(pick)), params, n_variants=3, workers=2)
    prep_s = time.perf_counter() - t0
    settings = TrainSettings()
    model = build_cnn(params.image_size)
    model.compile(optimizer="adam", loss=logit_loss(settings.consistency))
    ds = training_dataset(data, params, settings, settings.seed)
    model.fit(ds, epochs=1, verbose=0)  # warm-up: tracing and the first pass
    t1 = time.perf_counter()
    model.fit(ds, epochs=args.epochs, verbose=0)
    fit_s = time.perf_counter() - t1
    ips = args.epochs * len(data.labels) / fit_s
    result = {
        "machine": machine(),
        "images": len(data.labels),
        "batch_size": settings.batch_size,
        "epochs_timed": args.epochs,
        "train_images_per_s": round(ips, 1),
        "preprocess_3_variants_images_per_s": round(len(data.labels) / prep_s, 1),
    }
    md = (
        f"Training (batch {settings.batch_size}, augmentation on, {len(data.labels)} real images, "
        f"{args.epochs} timed epochs): **{ips:.1f} images/s**. Preprocessing each image plus two "
        f"simulated uploads (2 processes): {result['preprocess_3_variants_images_per_s']}"
        " images/s, once per data set (cached).\n"
    )
    write_result("training_speed", result, md)


if __name__ == "__main__":
    main()
