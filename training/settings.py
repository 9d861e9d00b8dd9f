"""Training settings: one dataclass, whose defaults are also the command line's (no TensorFlow
here, so `--help` is instant). The shipped model was trained with these defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainSettings:
    """Every training knob; recorded in the model card."""

    epochs: int = 45
    batch_size: int = 32
    learning_rate: float = 1e-3
    val_fraction: float = 0.15
    upload_variants: int = 2  # simulated uploads cached per image, beside the file as it is
    early_stop_patience: int = 15
    lr_patience: int = 5
    rotation_degrees: float = 10.0
    zoom: float = 0.1
    shift: float = 0.1
    seed: int = 42
    limit_per_class: int = 0  # 0 = all; small values make smoke runs
