"""The prediction engine: bytes in, probability, label and Grad-CAM arrays out.

The HTTP service and the batch command call the same `Predictor`; it returns arrays (the map and
the overlay), and each caller encodes them as it needs (base64 PNG for JSON, PNG files on disk).
One ONNX call gives the calibrated probability (calibration is inside the graph, applied once)
and the features the out-of-distribution guard judges before any label is given.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.bundle import BundleError, ModelBundle
from engine.ood import OodGuard, OodVerdict
from engine.overlay import encode_png, render_overlay, shrink
from engine.population import (
    OutsidePopulationError,
    PopulationCheck,
    PopulationProbe,
    population_warning,
)
from engine.records.reference import MonitoringReference
from engine.settings import EngineSettings
from imaging import (
    NotChestXrayError,
    colourfulness,
    decode_upload,
    gray_statistics,
    preprocess_grayscale,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageFacts:
    """What the upload was: format from its bytes, size as displayed (EXIF orientation applied)."""

    format: str
    width: int
    height: int
    dicom: dict[str, Any] | None = None  # acquisition facts only, never patient data
    # what the answer's record may keep (engine.records.rows hashes the UID, bands the age)
    record_facts: dict[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Heatmap:
    grid: np.ndarray = field(repr=False)  # float32 (rows, cols) in [0, 1]: the raw Grad-CAM map
    overlay: np.ndarray = field(repr=False)  # BGR uint8 at the upload's aspect ratio
    film: np.ndarray = field(repr=False)  # the 8-bit film the overlay is drawn on, same size
    empty: bool  # no region raised the pneumonia score: the overlay shows the film alone
    strength: float  # colour strength of the overlay (the calibrated probability), in [0, 1]


@dataclass(frozen=True)
class Prediction:
    probability: float
    label: str
    threshold: float
    image: ImageFacts
    in_distribution: bool
    ood_score: float | None  # None for a bundle without guard statistics
    heatmap: Heatmap | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # sentences for the reader, e.g. a film outside the population
    population_score: float | None = None  # P(an adult's film) from the pixels; None: no check
    mean_logit: float | None = None  # the networks' mean logit before calibration (records)
    image_stats: dict[str, float] | None = None  # gray-level statistics (drift)
    feature_summary: list[float] | None = None  # pooled features on the reference's axes (drift)


class Predictor:
    """One loaded bundle, its threshold and (optionally) Grad-CAM; safe to call from threads."""

    def __init__(
        self,
        bundle: ModelBundle,
        threshold: float | None = None,
        max_image_pixels: int | None = None,
        heatmap_max_side: int = 512,
        tf_threads: int = 1,
        load_gradcam: bool = True,
        gradcam_backend: str = "onnx",
        refuse_out_of_distribution: bool = True,
        population_check: PopulationCheck = "warn",
        threads_alone: int = 0,
    ) -> None:
        self.bundle = bundle
        # A prediction that has the process to itself runs ONNX on `threads_alone` threads (0: all
        # the cores it may use); while several run at once each keeps the bundle's thread count,
        # so a quiet replica answers sooner and a busy one does not oversubscribe its cores.
        self.threads_alone = threads_alone or len(os.sched_getaffinity(0))
        self._running = 0
        self._running_lock = threading.Lock()
        self.threshold = bundle.threshold if threshold is None else float(threshold)
        self.max_image_pixels = max_image_pixels
        self.heatmap_max_side = heatmap_max_side
        card = bundle.card
        self.guard = OodGuard.load(bundle.directory, card.ood) if card.ood is not None else None
        self.refuse_out_of_distribution = refuse_out_of_distribution
        self.population_check = population_check
        pixel_check = card.population.check if card.population is not None else None
        self.pixel_check = pixel_check if population_check != "off" else None
        self.population_probe = (
            PopulationProbe.load(bundle.directory / pixel_check.file) if self.pixel_check else None
        )
        self.reference = (
            MonitoringReference.load(bundle.directory / card.monitoring.file)
            if card.monitoring is not None
            else None
        )
        self.gradcam: Any = None
        self._gradcam_pool: ThreadPoolExecutor | None = None
        # A prediction alone shrinks the film for its overlay here while it resizes the film for
        # the networks: OpenCV's area resize runs on one thread, and both read the whole film
        # (3.6 ms and 9 ms on the adult CR). Under load the cores are busy anyway: no hand-off.
        self._film_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="film")
        if load_gradcam and gradcam_backend == "onnx" and bundle.has_gradcam_graph:
            from engine.gradcam import OnnxGradCam

            self.gradcam = OnnxGradCam(bundle)
        elif load_gradcam:
            from engine.gradcam import GradCam
            from engine.runtime import configure_tensorflow

            if gradcam_backend == "onnx":
                log.info("the bundle has no Grad-CAM graph: heatmaps come from model.keras")
            try:
                configure_tensorflow(tf_threads)
            except ImportError as exc:
                raise BundleError(
                    "heatmaps from model.keras need TensorFlow, which is not installed: give the "
                    "bundle its Grad-CAM graph (python -m training gradcam-graph), install the "
                    "keras-gradcam extra, or set GRADCAM_ENABLED=false"
                ) from exc
            self.gradcam = GradCam(
                bundle.keras_model(), bundle.card.gradcam, bundle.preprocessing.image_size
            )
            # Grad-CAM runs beside the ONNX call (it needs only the tensor): one request's
            # heatmap costs the longer of the two, not their sum, when a core is free.
            self._gradcam_pool = ThreadPoolExecutor(
                max_workers=len(os.sched_getaffinity(0)), thread_name_prefix="gradcam"
            )
        self.warm_up()

    @classmethod
    def from_settings(cls, settings: EngineSettings, **overrides: Any) -> Predictor:
        """Load `settings.model_dir` as configured; `overrides` replace settings fields."""
        settings = settings.model_copy(update=overrides) if overrides else settings
        bundle = ModelBundle.load(settings.model_dir, intra_op_threads=settings.onnx_threads)
        return cls(
            bundle,
            threshold=settings.threshold,
            max_image_pixels=settings.max_image_pixels,
            heatmap_max_side=settings.heatmap_max_side,
            tf_threads=settings.tf_threads,
            load_gradcam=settings.gradcam_enabled,
            gradcam_backend=settings.gradcam_backend,
            refuse_out_of_distribution=settings.ood_guard,
            population_check=settings.population_check,
            threads_alone=settings.onnx_threads_alone,
        )

    @classmethod
    def from_directory(cls, model_dir: str | Path, **overrides: Any) -> Predictor:
        return cls.from_settings(EngineSettings(model_dir=Path(model_dir)), **overrides)

    @property
    def gradcam_in_graph(self) -> bool:
        """The map comes from the bundle's Grad-CAM graph, with the answer, in one call."""
        return self.gradcam is not None and self._gradcam_pool is None

    def warm_up(self) -> None:
        """Load every session a request may use (one thread, and every core for a prediction
        alone), trace the tf.function, so the first request is not the slow one."""
        blank = np.zeros(self.bundle.preprocessing.input_shape, np.float32)
        for threads in {None, self.threads_alone}:
            self.bundle.run(blank[np.newaxis], threads)
            if self.gradcam_in_graph:
                self.gradcam.run(blank, threads)
        if self.gradcam is not None and not self.gradcam_in_graph:
            self.gradcam(blank)
        # One whole prediction on a made-up film, so the first upload does not pay for lazy
        # initialisation in the decoders and OpenCV (a quarter of a second measured in the image,
        # enough to make the admission estimate refuse a first burst).
        gradient = np.linspace(0, 255, 256 * 192, dtype=np.float32).reshape(192, 256)
        film = cv2.imencode(".png", gradient.astype(np.uint8))[1].tobytes()
        answer = self._predict(film, heatmap=self.gradcam is not None, warm_up=True)
        if answer.heatmap is not None:
            encode_png(answer.heatmap.overlay)

    def judge(self, outputs: dict[str, np.ndarray], gray: np.ndarray, colour: float) -> OodVerdict:
        if self.guard is None:
            return OodVerdict(None, True, None)
        return self.guard.judge(outputs[self.guard.spec.feature_output][0], gray, colour)

    def mean_logit(self, probability: float) -> float | None:
        """The networks' mean logit, recovered from the calibrated probability (the calibration
        is inside the graph); saturated probabilities give the logit of 1e-7 or 1 - 1e-7."""
        calibration = self.bundle.card.calibration
        if calibration is None or calibration.slope == 0:
            return None
        p = min(max(probability, 1e-7), 1 - 1e-7)
        return (math.log(p / (1 - p)) - calibration.bias) / calibration.slope

    def feature_summary(self, outputs: dict[str, np.ndarray]) -> list[float] | None:
        if self.reference is None or self.bundle.card.ood is None:
            return None
        return self.reference.summary(outputs[self.bundle.card.ood.feature_output][0])

    def population_score(self, outputs: dict[str, np.ndarray]) -> float | None:
        """How much the film looks like an adult's, from the pooled features (None: no check)."""
        if self.population_probe is None:
            return None
        return self.population_probe.score(outputs[self.pixel_check.feature_output][0])

    def population_warnings(self, facts: Any, score: float | None = None) -> tuple[str, ...]:
        """The population check on the header's age and (given a score) the pixels: warnings,
        or the refusal when so set. Called before inference with the header alone (a refusal
        needs no networks) and after it with the score."""
        if self.population_check == "off":
            return ()
        age = facts.age_years if facts is not None else None
        pixels_adult = None if score is None else score >= self.pixel_check.threshold
        warning = population_warning(age, self.bundle.card.population, pixels_adult, score)
        if warning is None:
            return ()
        if self.population_check == "refuse":
            raise OutsidePopulationError(warning[0].upper() + warning[1:])
        return (warning,)

    def _timed_gradcam(self, tensor: np.ndarray) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        grid = self.gradcam(tensor)
        return grid, time.perf_counter() - started

    def predict(self, data: bytes, heatmap: bool = True) -> Prediction:
        """Raises an `imaging.ImageError` subclass when the bytes are not a usable X-ray,
        `NotChestXrayError` (with the score) when the guard refuses it, and
        `OutsidePopulationError` when the header's age is outside the population and the check
        refuses."""
        with self._running_lock:
            self._running += 1
        try:
            return self._predict(data, heatmap)
        finally:
            with self._running_lock:
                self._running -= 1

    def _onnx_threads(self) -> int | None:
        """Every allowed core when this is the only prediction running, else the bundle's."""
        return self.threads_alone if self._running == 1 else None

    def _predict(self, data: bytes, heatmap: bool, warm_up: bool = False) -> Prediction:
        """The prediction itself; `warm_up` lifts the pixel limit and the refusal for the
        made-up film `warm_up()` sends."""
        if heatmap and self.gradcam is None:
            raise RuntimeError("this predictor was created without Grad-CAM")
        t0 = time.perf_counter()
        limit = None if warm_up else self.max_image_pixels  # the made-up film may be over it
        header, gray = decode_upload(data, self.bundle.preprocessing, limit)
        self.population_warnings(header.dicom)  # an age outside refuses before any network runs
        t1 = time.perf_counter()
        shrinking = None
        if heatmap and self._running <= 1:
            shrinking = self._film_pool.submit(shrink, gray, self.heatmap_max_side)
        tensor = preprocess_grayscale(gray, self.bundle.preprocessing)
        t2 = time.perf_counter()
        explaining: Future | None = None
        grid = None
        if heatmap and self.gradcam_in_graph:
            # the answer and the map from one forward pass
            outputs = self.gradcam.run(tensor, self._onnx_threads())
            grid = outputs[self.gradcam.output]
        else:
            if heatmap:
                explaining = self._gradcam_pool.submit(self._timed_gradcam, tensor)
            alone = self._onnx_threads() if explaining is None else None  # TF has the other core
            outputs = self.bundle.run(tensor[np.newaxis], alone)
        probability = float(outputs[self.bundle.card.probability_output.name].reshape(-1)[0])
        t3 = time.perf_counter()
        verdict = self.judge(outputs, gray, colourfulness(data, header) if self.guard else 0.0)
        if not verdict.in_distribution and self.refuse_out_of_distribution and not warm_up:
            if explaining is not None:
                explaining.cancel()  # a refused image gets no heatmap (if it has not started)
            raise NotChestXrayError(verdict.reason or "not a chest X-ray", verdict.score)
        population_score = self.population_score(outputs)
        warnings = () if warm_up else self.population_warnings(header.dicom, population_score)
        t4 = time.perf_counter()
        positive = probability >= self.threshold
        label = self.bundle.labels[int(positive)]
        width, height = header.width, header.height
        if (gray.shape[1] > gray.shape[0]) != (width > height) and width != height:
            width, height = height, width  # EXIF orientation turned the picture
        timings = {"decode": t1 - t0, "preprocess": t2 - t1, "inference": t3 - t2, "guard": t4 - t3}
        explained = None
        if explaining is not None:
            grid, gradcam_seconds = explaining.result()
            # gradcam: its own compute time, which overlapped inference and the guard; total is
            # the wall time, so the stages may add up to more than the total.
            timings["gradcam"] = gradcam_seconds
        if grid is not None:
            t5 = time.perf_counter()
            film = shrink(gray, self.heatmap_max_side) if shrinking is None else shrinking.result()
            overlay = render_overlay(film, grid, strength=probability)
            t6 = time.perf_counter()
            # Grad-CAM can find no region that raises the pneumonia score: say so.
            explained = Heatmap(
                grid=grid,
                overlay=overlay,
                film=film,
                empty=bool(grid.max() < 1e-6),
                strength=float(np.clip(probability, 0.0, 1.0)),
            )
            timings["overlay"] = t6 - t5
        timings["total"] = time.perf_counter() - t0
        return Prediction(
            probability=probability,
            label=label,
            threshold=self.threshold,
            image=ImageFacts(
                header.format,
                width,
                height,
                header.dicom.as_dict() if header.dicom else None,
                header.dicom.record_facts() if header.dicom else None,
            ),
            heatmap=explained,
            in_distribution=verdict.in_distribution,
            ood_score=verdict.score,
            timings_ms={k: round(v * 1000, 3) for k, v in timings.items()},
            warnings=warnings,
            population_score=population_score,
            mean_logit=self.mean_logit(probability),
            image_stats=gray_statistics(gray),
            feature_summary=self.feature_summary(outputs),
        )
