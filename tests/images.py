"""Pictures the tests make for themselves: synthetic chest films, encodings, hostile files.

Nothing here needs the development data set, so the suite runs on a fresh clone.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def synthetic_film(
    rng: np.random.Generator | int = 0,
    height: int = 400,
    width: int = 330,
    pneumonia: bool = False,
) -> np.ndarray:
    """A frontal chest film as a uint8 gray array: body, two dark lungs, spine, ribs, noise.

    With `pneumonia`, patchy bright opacities sit in the lung fields (the class a model can learn).
    """
    rng = np.random.default_rng(rng)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    y, x = yy / height, xx / width
    film = np.full((height, width), 25.0, np.float32)
    body = np.exp(-(((x - 0.5) / 0.42) ** 6 + ((y - 0.55) / 0.55) ** 6))
    film += 170 * body
    for side in (-1, 1):
        cx = 0.5 + side * rng.uniform(0.17, 0.21)
        lung = np.exp(-(((x - cx) / rng.uniform(0.12, 0.15)) ** 2 + ((y - 0.48) / 0.27) ** 4))
        film -= 120 * lung
        for k in range(7):  # ribs: bright arcs across each lung
            ry = 0.25 + 0.075 * k
            film += 22 * lung * np.exp(-(((y - ry - 0.25 * (x - cx) ** 2) / 0.012) ** 2))
        if pneumonia:
            for _ in range(int(rng.integers(2, 5))):
                py, px = rng.uniform(0.4, 0.65), cx + rng.uniform(-0.07, 0.07)
                size = rng.uniform(0.04, 0.08)
                film += 70 * lung * np.exp(-(((x - px) ** 2 + (y - py) ** 2) / size**2))
    film += 60 * np.exp(-(((x - 0.5) / 0.05) ** 2)) * body  # spine and mediastinum
    film += rng.normal(0, 4, film.shape)
    film = cv2.GaussianBlur(film, (0, 0), 1.2)
    return np.clip(film, 0, 255).astype(np.uint8)


def encode(image: np.ndarray | Image.Image, fmt: str, **kwargs) -> bytes:
    """An array or a Pillow image in any format Pillow writes (PNG, JPEG, GIF, TIFF, BMP...)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def png_bytes(image: np.ndarray | Image.Image, **kwargs) -> bytes:
    return encode(image, "PNG", **kwargs)


def jpeg_bytes(image: np.ndarray | Image.Image, quality: int = 92, **kwargs) -> bytes:
    return encode(image, "JPEG", quality=quality, **kwargs)


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid-looking PNG of a few hundred bytes whose header claims width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4)  # a few rows; a decoder would want them all
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def exif_rotated_jpeg(gray: np.ndarray) -> bytes:
    """The film stored turned 90 degrees, with the EXIF tag that tells viewers to turn it back."""
    exif = Image.Exif()
    exif[0x0112] = 6
    turned = Image.fromarray(gray).transpose(Image.Transpose.ROTATE_90)
    return encode(turned, "JPEG", quality=90, exif=exif.tobytes())


def write_kaggle_layout(
    root: Path, per_class: dict[str, int], seed: int = 0, size: tuple[int, int] = (299, 299)
) -> Path:
    """ROOT/chest_xray/{split}/{NORMAL,PNEUMONIA}/*.jpeg of synthetic films; returns chest_xray."""
    rng = np.random.default_rng(seed)
    data_dir = Path(root) / "chest_xray"
    for split, count in per_class.items():
        for label in ("NORMAL", "PNEUMONIA"):
            folder = data_dir / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                film = synthetic_film(rng, *size, pneumonia=label == "PNEUMONIA")
                (folder / f"{label.lower()}-{i:03d}.jpeg").write_bytes(jpeg_bytes(film, 95))
    return data_dir
