"""The prediction engine used by the HTTP service and the batch command alike."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.bundle import ModelBundle
from app.gradcam import GradCam, configure_tensorflow
from app.overlay import encode_png_base64, render_overlay
from imaging import decode_upload, preprocess_grayscale


@dataclass
class Prediction:
    probability: float
    label: str
    threshold: float
    image_format: str
    width: int
    height: int
    heatmap_png_base64: str | None = None
    heatmap_empty: bool | None = None
    overlay: np.ndarray | None = field(default=None, repr=False)
    timings_ms: dict[str, float] = field(default_factory=dict)


class Predictor:
    """Bytes in, probability, label and (optionally) a Grad-CAM overlay out."""

    def __init__(
        self,
        bundle: ModelBundle,
        threshold: float | None = None,
        max_image_pixels: int | None = None,
        heatmap_max_side: int = 512,
        tf_threads: int = 1,
        load_gradcam: bool = True,
    ) -> None:
        self.bundle = bundle
        self.threshold = bundle.threshold if threshold is None else float(threshold)
        self.max_image_pixels = max_image_pixels
        self.heatmap_max_side = heatmap_max_side
        self.gradcam: GradCam | None = None
        if load_gradcam:
            configure_tensorflow(tf_threads)
            self.gradcam = GradCam(
                bundle.keras_model(),
                bundle.card.get("gradcam_layer", "block5_relu"),
                bundle.preprocessing.image_size,
            )
            self.warm_up()

    @classmethod
    def from_directory(cls, model_dir: str | Path, onnx_threads: int = 1, **kwargs) -> Predictor:
        return cls(ModelBundle.load(model_dir, intra_op_threads=onnx_threads), **kwargs)

    def warm_up(self) -> None:
        """Trace the tf.function and touch ONNX once, so the first request is not the slow one."""
        blank = np.zeros(self.bundle.preprocessing.input_shape, np.float32)
        self.bundle.predict(blank[np.newaxis])
        if self.gradcam is not None:
            self.gradcam(blank)

    def predict(self, data: bytes, heatmap: bool = True) -> Prediction:
        """Raises an `imaging.ImageError` subclass when the bytes are not a usable X-ray."""
        t0 = time.perf_counter()
        header, gray = decode_upload(data, self.bundle.preprocessing, self.max_image_pixels)
        t1 = time.perf_counter()
        tensor = preprocess_grayscale(gray, self.bundle.preprocessing)
        t2 = time.perf_counter()
        probability = float(self.bundle.predict(tensor[np.newaxis])[0])
        t3 = time.perf_counter()
        label = self.bundle.labels[int(probability >= self.threshold)]
        width, height = header.width, header.height
        if (gray.shape[1] > gray.shape[0]) != (width > height) and width != height:
            width, height = height, width  # EXIF orientation turned the picture
        result = Prediction(probability, label, self.threshold, header.format, width, height)
        timings = {"decode": t1 - t0, "preprocess": t2 - t1, "inference": t3 - t2}
        if heatmap:
            if self.gradcam is None:
                raise RuntimeError("this predictor was created without Grad-CAM")
            cam = self.gradcam(tensor, explain_pneumonia=label == self.bundle.labels[1])
            # Grad-CAM can find no region that raises the label's score at this layer: say so.
            result.heatmap_empty = bool(cam.max() < 1e-6)
            t4 = time.perf_counter()
            result.overlay = render_overlay(gray, cam, self.heatmap_max_side)
            t5 = time.perf_counter()
            result.heatmap_png_base64 = encode_png_base64(result.overlay)
            t6 = time.perf_counter()
            timings.update({"gradcam": t4 - t3, "overlay": t5 - t4, "png_base64": t6 - t5})
        timings["total"] = time.perf_counter() - t0
        result.timings_ms = {k: round(v * 1000, 3) for k, v in timings.items()}
        return result
