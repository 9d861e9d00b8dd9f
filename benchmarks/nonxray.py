"""Things that are not chest X-rays, from what ships offline: the pictures in scikit-image's and
matplotlib's wheels (photos, textures, documents, other medical images) and made ones (blank,
noise, gradients, a typed page). The guard's tests and its benchmark use the same set.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import cv2
import numpy as np


def encode(image: np.ndarray, suffix: str = ".png") -> bytes:
    """Any array (bool, float, 16-bit, RGB, RGBA) as 8-bit PNG or JPEG bytes."""
    if image.dtype != np.uint8:
        image = image.astype(np.float64)
        image = (image - image.min()) / max(float(image.max() - image.min()), 1e-9) * 255
        image = image.astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    ok, data = cv2.imencode(suffix, image)
    assert ok
    return data.tobytes()


SKIMAGE = {
    "photo": ("astronaut", "camera", "chelsea", "coffee", "rocket", "horse", "clock", "coins"),
    "texture": ("brick", "grass", "gravel", "checkerboard"),
    "document": ("page", "text"),
    "other medical image": ("retina", "immunohistochemistry", "cell", "shepp_logan_phantom"),
    "other": ("moon", "hubble_deep_field", "colorwheel", "logo"),
}


def skimage_images() -> dict[str, tuple[str, bytes]]:
    import skimage.data

    out = {}
    for kind, names in SKIMAGE.items():
        for name in names:
            out[f"skimage {name}"] = (kind, encode(np.asarray(getattr(skimage.data, name)())))
    left, _, _ = skimage.data.stereo_motorcycle()
    out["skimage motorcycle"] = ("photo", encode(left, ".jpg"))
    return out


def matplotlib_images() -> dict[str, tuple[str, bytes]]:
    import matplotlib.cbook as cbook

    folder = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).parent
    with gzip.open(folder / "s1045.ima.gz") as handle:
        mri = np.frombuffer(handle.read(), np.uint16).reshape(256, 256)
    elevation = np.load(folder / "jacksboro_fault_dem.npz")["elevation"]
    return {
        "matplotlib grace_hopper": ("photo", (folder / "grace_hopper.jpg").read_bytes()),
        "matplotlib Minduka": ("photo", (folder / "Minduka_Present_Blue_Pack.png").read_bytes()),
        "matplotlib logo": ("other", (folder / "logo2.png").read_bytes()),
        "matplotlib MRI slice": ("other medical image", encode(mri)),
        "matplotlib elevation map": ("other", encode(elevation)),
    }


def made_images(seed: int = 0) -> dict[str, tuple[str, bytes]]:
    rng = np.random.default_rng(seed)
    h, w = 480, 400
    page = np.full((1100, 850), 245, np.uint8)
    for i, y in enumerate(range(80, 1050, 34)):
        line = f"Discharge summary, line {i}: follow up in two weeks, no acute findings."
        cv2.putText(page, line, (50, y), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 20, 2)
    return {
        "blank white": ("blank", encode(np.full((h, w), 255, np.uint8))),
        "blank black": ("blank", encode(np.zeros((h, w), np.uint8))),
        "mid gray": ("blank", encode(np.full((h, w), 128, np.uint8))),
        "uniform noise": ("noise", encode(rng.integers(0, 256, (h, w)).astype(np.uint8))),
        "gaussian noise": ("noise", encode(np.clip(rng.normal(128, 40, (h, w)), 0, 255))),
        "horizontal gradient": ("gradient", encode(np.tile(np.linspace(0, 255, w), (h, 1)))),
        "vertical gradient": ("gradient", encode(np.tile(np.linspace(0, 255, h)[:, None], (1, w)))),
        "typed page": ("document", encode(page, ".jpg")),
    }


def not_chest_xrays() -> dict[str, tuple[str, bytes]]:
    """name -> (kind, encoded image) for every picture in the set."""
    return {**skimage_images(), **matplotlib_images(), **made_images()}


def negative(data: bytes) -> bytes:
    """A film turned into its negative (what a wrongly inverted export looks like)."""
    gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    return encode(255 - gray)


def turned(data: bytes) -> bytes:
    """A film turned 90 degrees clockwise."""
    gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    return encode(np.ascontiguousarray(np.rot90(gray, k=-1)))
