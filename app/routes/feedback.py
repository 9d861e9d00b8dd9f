"""POST /feedback: a reader's verdict on an answer, kept beside the answer's record.

The same reader again replaces their verdict; an unknown request id is 404. Verdicts feed the
realised figures on GET /monitoring and `python -m training calibrate --from-records`.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from app.deps import StateDep, require_api_key
from app.schemas import error_responses

router = APIRouter(tags=["feedback"])
WAIT_FOR_QUEUED_SECONDS = 5.0


class FeedbackRequest(BaseModel):
    request_id: str = Field(
        min_length=1,
        max_length=64,
        description="The answer's `request_id`.",
        examples=["6f1c2a9e0b7d4c55"],
    )
    label: Literal["NORMAL", "PNEUMONIA"] = Field(description="What the reader found.")
    reader: str = Field(
        "", max_length=128, description="Who read the film (a name or a code); one verdict each."
    )
    comment: str | None = Field(None, max_length=2000, description="Free text, optional.")


class FeedbackStored(BaseModel):
    request_id: str
    label: str
    reader: str
    stored: bool = True


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackStored,
    summary="A reader's verdict on an answer",
    responses=error_responses(400, 401, 404, 422, 503),
    dependencies=[Depends(require_api_key)],
)
def feedback(body: FeedbackRequest, state: StateDep) -> FeedbackStored:
    """Stored beside the answer's record (201); the same reader again replaces their verdict."""
    answers = state.answers
    if answers is None:
        raise HTTPException(503, "answers are not recorded on this server (RECORD_ANSWERS=off)")
    store = answers.store
    try:
        answers.flush(WAIT_FOR_QUEUED_SECONDS)  # the answer may still be on its way to the store
        stored = store.add_verdict(body.request_id, body.label, body.reader, body.comment)
    except Exception as exc:  # the database is unreachable: verdicts are not spooled
        raise HTTPException(
            503, "the record database is unreachable; send the verdict again later"
        ) from exc
    if not stored:
        raise HTTPException(404, f"no answer with request id {body.request_id} is on record")
    return FeedbackStored(request_id=body.request_id, label=body.label, reader=body.reader)
