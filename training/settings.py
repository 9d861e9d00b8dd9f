"""Training settings: one dataclass, whose defaults are also the command line's (no TensorFlow
here, so `--help` is instant). The shipped model was trained with these defaults."""

from __future__ import annotations

from dataclasses import dataclass

# The fields that decide the split, the cache and the served graph: all `python -m training
# export` needs to rebuild a bundle from checkpoints, and all it can vouch for in the card.
SPLIT_FLAGS = (
    "val_fraction",
    "upload_variants",
    "consistency",
    "split_seed",
    "gradcam_blocks",
    "false_negative_cost",
)


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
    noise_std: float = 0.0  # Gaussian pixel noise on training batches (0..1 scale)
    border_erase_rate: float = 0.0  # share of images with one border band painted over
    marker_rate: float = 0.0  # share of images with a bright marker pasted somewhere
    consistency: float = 0.0  # weight of (logit(x) - logit(invisible twin of x))^2; 0 = off
    members: int = 3  # networks in the served ensemble (seeds seed, seed+1, ...)
    teacher: str = ""  # a bundle whose view-averaged answers are the targets ("" = the labels)
    gradcam_blocks: str = "4,5"  # blocks whose Grad-CAM maps are multiplied (comma-separated)
    seed: int = 1  # initial weights and augmentation of the first member
    split_seed: int = 42  # validation carve and cached uploads, shared by all members
    limit_per_class: int = 0  # 0 = all; small values make smoke runs
    false_negative_cost: float = 1.0  # a missed pneumonia against a false alarm (the threshold)

    @property
    def gradcam_block_numbers(self) -> tuple[int, ...]:
        return tuple(int(b) for b in self.gradcam_blocks.split(",") if b.strip())
