"""Floor 2: the model bundle and its typed card, the Predictor (bytes -> answer), Grad-CAM and the
overlay. Used by the service (`app`), training's export and evaluation, and the benchmarks; it
imports no FastAPI and no training code. TensorFlow loads only when Grad-CAM is asked for.
"""

from engine.bundle import BundleError, ModelBundle
from engine.card import CardError, ModelCard
from engine.predictor import Heatmap, ImageFacts, Prediction, Predictor
from engine.settings import EngineSettings, default_model_dir

__all__ = [
    "BundleError",
    "CardError",
    "EngineSettings",
    "Heatmap",
    "ImageFacts",
    "ModelBundle",
    "ModelCard",
    "Prediction",
    "Predictor",
    "default_model_dir",
]
