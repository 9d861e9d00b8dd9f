"""Open Inference Protocol (KServe v2) health and model metadata, for KServe, Triton-style
clients and Kubernetes probes. `{name}` is the model card's name; predictions stay on /predict.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.deps import RETRY_AFTER_SECONDS, StateDep

router = APIRouter(prefix="/v2", tags=["open inference protocol"])

# ONNX element types as the protocol names them.
DATATYPES = {"float32": "FP32", "float64": "FP64", "int64": "INT64", "uint8": "UINT8"}


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class TensorMetadata(BaseModel):
    name: str
    datatype: str = Field(examples=["FP32"])
    shape: list[int] = Field(
        description="-1 for a variable dimension", examples=[[-1, 150, 150, 1]]
    )


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


def _not_ready(body: BaseModel) -> JSONResponse:
    return JSONResponse(
        body.model_dump(), status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


@router.get("/health/live", response_model=Live, summary="Server liveness")
def server_live() -> Live:
    return Live(live=True)


@router.get(
    "/health/ready",
    response_model=Ready,
    summary="Server readiness (503 until the model is loaded)",
    responses={503: {"model": Ready}},
)
def server_ready(state: StateDep):
    return Ready(ready=True) if state.ready else _not_ready(Ready(ready=False))


def _check_name(state: StateDep, name: str) -> None:
    """404 for a name that is not the served model's (known from its card even while loading)."""
    known = state.model_name
    if known is None or name != known:
        raise HTTPException(404, f"no model named {name!r} is served here")


@router.get(
    "/models/{name}/ready",
    response_model=ModelReady,
    summary="Model readiness",
    responses={404: {"description": "Unknown model name."}, 503: {"model": ModelReady}},
)
def model_ready(name: str, state: StateDep):
    _check_name(state, name)
    body = ModelReady(name=name, ready=state.ready)
    return body if state.ready else _not_ready(body)


@router.get(
    "/models/{name}",
    response_model=ModelMetadata,
    summary="Model metadata: versions, platform, input and output tensors",
    responses={404: {"description": "Unknown model name."}, 503: {"description": "Loading."}},
)
def model_metadata(name: str, state: StateDep) -> ModelMetadata:
    _check_name(state, name)
    if state.predictor is None:
        raise HTTPException(503, state.error or "the model is loading")
    card = state.predictor.bundle.card

    def tensor(spec) -> TensorMetadata:
        shape = [-1 if d is None else int(d) for d in spec.shape]
        return TensorMetadata(name=spec.name, datatype=DATATYPES[spec.dtype], shape=shape)

    return ModelMetadata(
        name=card.name,
        versions=[card.version],
        platform="onnxruntime",
        inputs=[tensor(card.input)],
        outputs=[tensor(o) for o in card.outputs],
    )
