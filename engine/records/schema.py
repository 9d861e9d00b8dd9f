"""The tables. Column names are the record's vocabulary (docs/operations.md lists them).

What is deliberately absent: pixels, patient names and identifiers, dates of birth, exact ages
(an age band only), study dates, accession numbers. A DICOM's SOP Instance UID is kept only as a
sha256, so a RIS export can be matched to its answer without the store holding the UID.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class AnswerRecord(Base):
    """One answer (or refusal) of the service, whatever route or program gave it."""

    __tablename__ = "answers"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    source: Mapped[str] = mapped_column(String(16))  # predict, v2, batch, dicom-node
    model_version: Mapped[str] = mapped_column(String(64))
    upload_sha256: Mapped[str] = mapped_column(String(64), index=True)
    sop_instance_uid_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    format: Mapped[str | None] = mapped_column(String(8))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    modality: Mapped[str | None] = mapped_column(String(16))
    manufacturer: Mapped[str | None] = mapped_column(String(64))
    manufacturer_model: Mapped[str | None] = mapped_column(String(64))
    view_position: Mapped[str | None] = mapped_column(String(16))
    photometric_interpretation: Mapped[str | None] = mapped_column(String(16))
    bits_stored: Mapped[int | None] = mapped_column(Integer)
    age_band: Mapped[str | None] = mapped_column(String(8))
    mean_logit: Mapped[float | None] = mapped_column(Float)  # the networks', before calibration
    probability: Mapped[float | None] = mapped_column(Float)
    label: Mapped[str | None] = mapped_column(String(16))
    threshold: Mapped[float | None] = mapped_column(Float)
    ood_score: Mapped[float | None] = mapped_column(Float)
    in_distribution: Mapped[bool | None] = mapped_column()
    population_score: Mapped[float | None] = mapped_column(Float)
    refusal_code: Mapped[str | None] = mapped_column(String(32), index=True)  # None: answered
    status: Mapped[int] = mapped_column(Integer)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    image_stats: Mapped[dict[str, float] | None] = mapped_column(JSON)
    feature_summary: Mapped[list[float] | None] = mapped_column(JSON)
    timings_ms: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Verdict(Base):
    """A reader's label for an answer; the same reader again replaces their verdict."""

    __tablename__ = "verdicts"
    __table_args__ = (UniqueConstraint("request_id", "reader", name="one_verdict_per_reader"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("answers.request_id", ondelete="CASCADE"), index=True
    )
    reader: Mapped[str] = mapped_column(String(128), default="")
    label: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
