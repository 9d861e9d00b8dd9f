"""The typed model card: the only code that reads or writes `model_card.json`.

Export writes it, evaluation adds metrics to it, the bundle loader validates the files against it
and `GET /model` serves it. It carries every fact another part would otherwise hard-code: the
labels, the input tensor, the preprocessing parameters, the decision threshold, the Grad-CAM
layers, the calibration and the out-of-distribution statistics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
)

from imaging import PreprocessingParams

CARD_FILE = "model_card.json"
SCHEMA_VERSION = 2


class CardError(RuntimeError):
    """The card is missing, not JSON, or not a model card this code can read (one-line reason)."""


def _params_from_card(value: Any) -> PreprocessingParams:
    if isinstance(value, PreprocessingParams):
        return value
    if not isinstance(value, dict):
        raise ValueError("preprocessing must be an object")
    return PreprocessingParams.from_dict(value)


Preprocessing = Annotated[
    PreprocessingParams,
    BeforeValidator(_params_from_card),
    PlainSerializer(lambda params: params.to_dict(), return_type=dict),
]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())


class TensorSpec(_Part):
    """A named model input or output; `shape` has None for the batch dimension."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str = "float32"
    range: tuple[float, float] | None = None
    meaning: str = ""


class Threshold(_Part):
    """The cut on the calibrated probability; `rule` says what it optimises (older cards: none)."""

    value: float = Field(ge=0.0, le=1.0)
    method: str
    chosen_on: str
    rule: Literal["expected_cost"] | None = None
    false_negative_cost: float | None = Field(
        None, description="cost of a missed pneumonia relative to a false alarm (1 = equal)"
    )
    mean_logit_cut: float | None = Field(
        None, description="the same cut on the members' mean logit, before calibration"
    )
    calibration_prevalence: float | None = Field(
        None, description="share of PNEUMONIA films in the data calibration was fitted on"
    )


# Threshold fields added with the expected-cost rule; absent from the cards written before it.
LATER_THRESHOLD_FIELDS = ("rule", "false_negative_cost", "mean_logit_cut", "calibration_prevalence")
LATER_GRADCAM_FIELDS = ("graph", "graph_output", "parity")  # written only with a graph
GRADCAM_DEFAULTS = {"method": "gradcam"}


class PixelPopulationCheck(_Part):
    """Whether a film looks like an adult's from its pixels: a linear read-out of the pooled
    features (`file` holds its weights), flagged at or above `threshold`."""

    method: str
    file: str
    feature_output: str
    threshold: float = Field(gt=0.0, lt=1.0)
    fitted_on: str
    chosen_on: str
    rates: dict[str, Any] = Field(default_factory=dict)


class Population(_Part):
    """Whom the networks were trained on; films of other patients get a warning (or a refusal)."""

    description: str
    min_age_years: float = Field(ge=0.0)
    max_age_years: float = Field(gt=0.0, description="inclusive in whole years (5 = under 6)")
    source: str = ""
    views: tuple[str, ...] = ()
    check: PixelPopulationCheck | None = Field(
        None, description="the check from the pixels (older cards: the DICOM header's age only)"
    )


class GradCamMember(_Part):
    """Where Grad-CAM reads one network: its feature maps (one or more blocks), the pooled
    features and the Dense layer that turns them into the logit."""

    feature_layers: tuple[str, ...] = Field(min_length=1)
    pooled_layer: str
    dense_layer: str


class GradCamParity(_Part):
    """How far the ONNX Grad-CAM graph is from TensorFlow's on real inputs (export checks it)."""

    images: int
    max_abs_diff: float = Field(description="largest |TensorFlow - ONNX| of a map value")
    min_correlation: float = Field(description="lowest Pearson correlation of a pair of maps")
    probability_max_abs_diff: float = Field(
        description="its probability against model.onnx's, divided by max(1, slope * p * (1 - p))"
        " (the calibration's magnification; cards before it: not divided)"
    )
    tolerance: float = Field(
        description="the export's gate: the lowest correlation allowed (older cards: the "
        "largest difference allowed)"
    )


class GradCamSpec(_Part):
    """One member per network; with several, the map explains their averaged logit. With several
    feature layers per member, each layer's map (summed over members, scaled to [0, 1]) is
    upsampled to the finest layer's grid and the maps are multiplied: what they agree on."""

    members: tuple[GradCamMember, ...] = Field(min_length=1)
    grid: tuple[int, int]
    chosen_because: str = ""
    method: Literal["gradcam", "hirescam"] = Field(
        "gradcam",
        description=(
            "gradcam: each channel weighted by its mean gradient (Selvaraju et al. 2017); "
            "hirescam: gradient times activation at every position, summed over channels "
            "(Draelos and Carin 2020)"
        ),
    )
    graph: str | None = Field(
        None,
        description=(
            "ONNX file in the bundle that computes the served outputs and this map in one call "
            "(no TensorFlow at serving time); without it the map comes from model.keras"
        ),
    )
    graph_output: str = "gradcam"
    parity: GradCamParity | None = None


class Calibration(_Part):
    """Platt scaling, P = sigmoid(slope * logit + bias); applied inside the model graph."""

    method: Literal["platt"] = "platt"
    slope: float
    bias: float
    applied_in: str = "the model graph (ONNX and Keras alike), after the members' mean logit"
    fitted_on: str
    metrics: dict[str, Any] = Field(default_factory=dict)


class OutOfDistribution(_Part):
    """Statistics of the training data in the model's feature space, and the refusal threshold."""

    method: str
    stats_file: str
    feature_output: str
    blocks: tuple[str, ...]
    threshold: float
    fitted_on: str
    chosen_on: str
    min_gray_std: float = Field(
        description="8-bit standard deviation below which an image is a blank, not a film"
    )
    max_colourfulness: float = Field(
        15.0,
        description="colourfulness above which a picture is a colour photograph, not a radiograph",
    )
    metrics: dict[str, Any] = Field(default_factory=dict)


class Parity(_Part):
    """How closely ONNX Runtime reproduces the Keras model on real films, checked at export."""

    images: int
    max_abs_diff: float = Field(description="largest |Keras - ONNX| on the probability")
    max_scaled_diff: float | None = Field(
        None,
        description="largest |Keras - ONNX| on the probability divided by max(1, slope * p * "
        "(1 - p)): what the gate compares with the tolerance, so that a steep calibration's "
        "magnified float32 rounding does not fail it (older cards: not recorded)",
    )
    tolerance: float
    features_max_rel_diff: float | None = Field(
        None, description="largest |Keras - ONNX| / (1 + |Keras|) on the guard's features"
    )
    features_tolerance: float | None = None


class OnnxInfo(_Part):
    opset: int
    parity: Parity | None = None


class MonitoringSpec(_Part):
    """Where monitoring's reference lives in the bundle and what it was made from."""

    file: str
    built_from: str
    films: int
    components: int = Field(description="principal axes the records' feature summary uses")


class ModelCard(_Part):
    """Everything known about a bundle; frozen: change it with `model_copy(update=...)`."""

    schema_version: Literal[2] = SCHEMA_VERSION
    name: str
    version: str
    created_at: str
    task: str
    intended_use: str
    labels: tuple[str, str] = Field(description="(below the threshold, at or above it)")
    sha256: dict[str, str] = Field(description="every bundle file the loader checks")
    input: TensorSpec
    outputs: tuple[TensorSpec, ...] = Field(min_length=1)
    preprocessing: Preprocessing
    threshold: Threshold
    gradcam: GradCamSpec
    calibration: Calibration | None = None
    population: Population | None = None
    ood: OutOfDistribution | None = None
    monitoring: MonitoringSpec | None = None
    onnx: OnnxInfo
    software: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)

    @property
    def probability_output(self) -> TensorSpec:
        return self.outputs[0]

    def output(self, name: str) -> TensorSpec | None:
        return next((o for o in self.outputs if o.name == name), None)

    def to_json(self) -> str:
        return json.dumps(self.as_json_dict(), indent=2) + "\n"

    def as_json_dict(self) -> dict[str, Any]:
        """The card as JSON values; fields added after schema 2 was written are left out while
        unset, so an older card reads and writes back byte for byte."""
        raw = self.model_dump(mode="json")
        for optional in ("population", "monitoring"):
            if raw.get(optional) is None:
                raw.pop(optional, None)
        if "population" in raw and raw["population"].get("check") is None:
            raw["population"].pop("check", None)
        threshold = raw["threshold"]
        for key in LATER_THRESHOLD_FIELDS:
            if threshold.get(key) is None:
                threshold.pop(key, None)
        gradcam = raw["gradcam"]
        if gradcam.get("graph") is None:
            for key in LATER_GRADCAM_FIELDS:
                gradcam.pop(key, None)
        parity = (raw.get("onnx") or {}).get("parity")
        if parity is not None and parity.get("max_scaled_diff") is None:
            parity.pop("max_scaled_diff", None)
        for key, default in GRADCAM_DEFAULTS.items():
            if gradcam.get(key) == default:
                gradcam.pop(key)
        return raw

    def write(self, bundle_dir: str | Path) -> Path:
        path = Path(bundle_dir) / CARD_FILE
        path.write_text(self.to_json())
        return path

    @classmethod
    def from_dict(cls, raw: Any) -> ModelCard:
        """Validate a parsed card; older schema versions are upgraded, errors are one line."""
        if not isinstance(raw, dict):
            raise CardError("the model card is not a JSON object")
        version = raw.get("schema_version", 1)
        if version == 1:
            raw = _upgrade_v1(raw)
        elif version != SCHEMA_VERSION:
            raise CardError(
                f"the model card has schema version {version!r}; this code reads "
                f"{SCHEMA_VERSION} (and upgrades 1)"
            )
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "card"
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            raise CardError(
                f"the model card is invalid at '{where}': {first['msg']}{more}"
            ) from exc

    @classmethod
    def read(cls, bundle_dir: str | Path) -> ModelCard:
        return cls.read_file(Path(bundle_dir) / CARD_FILE)

    @classmethod
    def read_file(cls, path: str | Path) -> ModelCard:
        path = Path(path)
        if not path.is_file():
            raise CardError(f"the bundle has no {path.name}")
        try:
            raw = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CardError(f"{path.name} is not valid JSON ({exc.__class__.__name__})") from exc
        return cls.from_dict(raw)


def _upgrade_v1(raw: dict[str, Any]) -> dict[str, Any]:
    """Cards written before the typed card (one network, a sigmoid Dense named in `output`)."""
    missing = [
        k for k in ("version", "sha256", "input", "preprocessing", "threshold") if k not in raw
    ]
    if missing:
        raise CardError(f"the model card has no '{missing[0]}' field")
    upgraded = {k: v for k, v in raw.items() if k not in ("output", "gradcam_layer")}
    output = raw.get("output") or {"name": "probability", "meaning": "P(PNEUMONIA)"}
    upgraded["schema_version"] = SCHEMA_VERSION
    upgraded["outputs"] = [
        {"name": output["name"], "shape": [None, 1], "meaning": output.get("meaning", "")}
    ]
    upgraded["gradcam"] = {
        "members": [
            {
                "feature_layers": [raw.get("gradcam_layer", "block5_relu")],
                "pooled_layer": "head_dropout",
                "dense_layer": output["name"],
            }
        ],
        "grid": [10, 10],
    }
    upgraded.setdefault("labels", ["NORMAL", "PNEUMONIA"])
    return upgraded
