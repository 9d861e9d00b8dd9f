"""DICOM in: a Part 10 file -> the 8-bit gray picture a radiologist's viewer would show.

pydicom parses the file and decodes its pixels (compressed transfer syntaxes through the pylibjpeg
plugins: JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, RLE). The display chain is the
standard one: modality LUT (RescaleSlope/Intercept or a Modality LUT Sequence), then the VOI LUT
Sequence or WindowCenter/WindowWidth when present, otherwise the full stored range; MONOCHROME1 is
inverted; colour (RGB, YBR, palette) becomes gray. It is computed once per possible stored value
(a lookup table of at most 65,536 entries), then applied to the pixels.

Everything is checked from the header before any pixel is decoded: the size against the pixel
limit, the presence of pixel data, the transfer syntax, and the view (a lateral film or another
body part is not a frontal chest X-ray). Nothing from the header that identifies a patient ever
leaves this module: errors name technical facts only, and `DicomFacts` holds acquisition facts.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from imaging.errors import (
    CorruptImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    NotChestXrayError,
    UnsupportedImageError,
)

log = logging.getLogger(__name__)

PREAMBLE_BYTES = 128
MAGIC = b"DICM"
# ViewPosition values of lateral films (PS3.3 C.8.11.5); decubitus AP/PA views stay frontal.
LATERAL_VIEWS = frozenset({"LL", "RL", "LATERAL", "LAT", "LLD", "RLD"})
# Modalities that are not projection radiographs of the chest.
OTHER_MODALITIES = frozenset({"CT", "MR", "US", "NM", "PT", "MG", "XA", "OCT", "OP", "ECG", "SM"})
# BodyPartExamined values that are clearly another part of the body (PS3.16 CID 4031 terms).
OTHER_BODY_PARTS = frozenset(
    {
        "SKULL", "HEAD", "BRAIN", "FACE", "JAW", "TMJ", "NECK", "CSPINE", "TSPINE", "LSPINE",
        "SSPINE", "COCCYX", "SPINE", "PELVIS", "HIP", "ABDOMEN", "KNEE", "LEG", "ANKLE", "FOOT",
        "HEEL", "TOE", "HAND", "FINGER", "WRIST", "FOREARM", "ELBOW", "ARM", "HUMERUS", "FEMUR",
        "EXTREMITY", "BREAST", "SHOULDER", "CLAVICLE", "SCAPULA",
    }
)  # fmt: skip


@dataclass(frozen=True)
class DicomFacts:
    """Acquisition facts that identify no one; the service may return them. `age_years` is for
    the population check only: it is neither in `as_dict()` nor in the repr."""

    modality: str | None
    view_position: str | None
    photometric_interpretation: str
    bits_stored: int
    transfer_syntax: str
    frames: int
    age_years: float | None = field(default=None, repr=False)
    # For the answer's record only (stored as a hash, and as words): not in as_dict() either.
    sop_instance_uid: str | None = field(default=None, repr=False)
    manufacturer: str | None = field(default=None, repr=False)
    manufacturer_model: str | None = field(default=None, repr=False)

    def record_facts(self) -> dict[str, Any]:
        """What the answer's record may keep beyond as_dict(): the store hashes the UID and
        keeps the age as a band."""
        return {
            **self.as_dict(),
            "age_years": self.age_years,
            "sop_instance_uid": self.sop_instance_uid,
            "manufacturer": self.manufacturer,
            "manufacturer_model": self.manufacturer_model,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "modality": self.modality,
            "view_position": self.view_position,
            "photometric_interpretation": self.photometric_interpretation,
            "bits_stored": self.bits_stored,
            "transfer_syntax": self.transfer_syntax,
            "frames": self.frames,
        }


def decodable_transfer_syntaxes() -> list[str]:
    """Every transfer syntax whose pixels this module can decode here (the uncompressed ones and
    those with an installed pydicom decoder): what a DICOM node should accept."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import AllTransferSyntaxes

    usable = []
    for syntax in AllTransferSyntaxes:
        try:
            if not syntax.is_compressed or get_decoder(syntax).is_available:
                usable.append(str(syntax))
        except NotImplementedError:  # no decoder at all for this syntax (video, audio, JPIP)
            continue
    return usable


def is_dicom(data: bytes) -> bool:
    """A DICOM Part 10 file: 128-byte preamble, then the four bytes DICM."""
    return data[PREAMBLE_BYTES : PREAMBLE_BYTES + 4] == MAGIC


def looks_like_bare_dataset(data: bytes) -> bool:
    """A dataset without the Part 10 header (starts at group 0002 or 0008, explicit VR)."""
    return len(data) > 8 and data[:2] in (b"\x02\x00", b"\x08\x00") and data[4:6].isalpha()


# PatientAge (VR AS): three digits and a unit, e.g. 064Y, 018M, 010W, 020D.
_AGE_STRING = re.compile(r"^\s*(\d{1,3})\s*([DWMY])\s*$")
_DAYS_PER_UNIT = {"D": 1.0, "W": 7.0, "M": 365.25 / 12, "Y": 365.25}
# Dates that say when the film was taken, best first.
_EXAM_DATES = ("StudyDate", "AcquisitionDate", "SeriesDate", "ContentDate")


def _date(value: Any) -> dt.date | None:
    try:
        return dt.datetime.strptime(str(value).strip()[:8], "%Y%m%d").date()
    except (TypeError, ValueError):
        return None


def patient_age_years(ds: Any) -> float | None:
    """The patient's age when the film was taken, from PatientAge, else PatientBirthDate and the
    first exam date present; None when the header does not say (or says nonsense)."""
    match = _AGE_STRING.match(str(ds.get("PatientAge") or ""))
    if match:
        return int(match.group(1)) * _DAYS_PER_UNIT[match.group(2)] / 365.25
    born = _date(ds.get("PatientBirthDate"))
    taken = next((d for d in (_date(ds.get(k)) for k in _EXAM_DATES) if d is not None), None)
    if born is None or taken is None or taken < born:
        return None
    return (taken - born).days / 365.25


def _text(ds: Any, keyword: str) -> str | None:
    value = ds.get(keyword)
    return str(value).strip().upper() or None if value is not None else None


def parse(data: bytes) -> Any:
    """The dataset (pixels not decoded); CorruptImageError when pydicom cannot read it."""
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(io.BytesIO(data))
    except Exception as exc:  # pydicom raises many kinds; none may reach the client as a 500
        raise CorruptImageError(
            f"the DICOM file is truncated or corrupt ({type(exc).__name__})"
        ) from exc


def check(ds: Any, max_pixels: int | None, min_side: int) -> tuple[int, int, DicomFacts]:
    """(width, height, facts) after every check that needs no pixel decoded."""
    from pydicom.pixels import get_decoder

    if "PixelData" not in ds:
        kind = "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
        if kind:
            raise UnsupportedImageError("DICOM floating-point pixel data is not supported")
        raise CorruptImageError("the DICOM file holds no image (no Pixel Data element)")
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        bits_stored = int(ds.get("BitsStored", ds.get("BitsAllocated", 8)))
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        photometric = str(ds.PhotometricInterpretation).strip().upper()
        syntax = ds.file_meta.TransferSyntaxUID
    except Exception as exc:
        raise CorruptImageError(
            f"the DICOM header lacks what a picture needs ({type(exc).__name__})"
        ) from exc
    facts = DicomFacts(
        modality=_text(ds, "Modality"),
        view_position=_text(ds, "ViewPosition"),
        photometric_interpretation=photometric,
        bits_stored=bits_stored,
        transfer_syntax=syntax.name,
        frames=frames,
        age_years=patient_age_years(ds),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        manufacturer=_text(ds, "Manufacturer"),
        manufacturer_model=_text(ds, "ManufacturerModelName"),
    )
    if min(rows, columns) < min_side:
        raise ImageTooSmallError(
            f"the image is {columns}x{rows} pixels; a chest X-ray needs at least {min_side} "
            "on each side"
        )
    if max_pixels is not None and rows * columns > max_pixels:
        raise ImageTooLargeError(
            f"the image has {columns}x{rows} = {rows * columns} pixels, over the limit of "
            f"{max_pixels}"
        )
    if not 1 <= bits_stored <= 16:
        raise UnsupportedImageError(f"DICOM images with {bits_stored} bits stored are not read")
    if facts.view_position in LATERAL_VIEWS:
        raise NotChestXrayError(
            f"the DICOM header says this is a lateral view (ViewPosition {facts.view_position}); "
            "the model reads frontal (PA/AP) chest films only"
        )
    if facts.modality in OTHER_MODALITIES:
        raise NotChestXrayError(
            f"the DICOM header says this is a {facts.modality} image, not a chest radiograph"
        )
    body_part = _text(ds, "BodyPartExamined")
    if body_part in OTHER_BODY_PARTS:
        raise NotChestXrayError(
            f"the DICOM header says the body part is {body_part}, not the chest"
        )
    try:
        decodable = get_decoder(syntax).is_available
    except Exception:
        decodable = False
    if not decodable:
        raise UnsupportedImageError(
            f"the DICOM transfer syntax {syntax.name} ({syntax}) cannot be decoded here"
        )
    return columns, rows, facts


def _stored_range(ds: Any) -> tuple[int, int]:
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 8)))
    if int(ds.get("PixelRepresentation", 0)) == 1:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _display_lut(ds: Any) -> tuple[np.ndarray, int]:
    """uint8 display value for every stored value from the lowest (returned as the offset)."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    low, high = _stored_range(ds)
    stored = np.arange(low, high + 1, dtype=np.int64)
    values = np.asarray(apply_modality_lut(stored, ds))
    if ds.get("ModalityLUTSequence"):
        lo, hi = 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    else:
        ends = np.asarray(apply_modality_lut(np.array([low, high]), ds), dtype=np.float64)
        lo, hi = float(ends.min()), float(ends.max())
    if ds.get("VOILUTSequence"):  # a table indexed by (integer) modality values
        values = np.rint(values).astype(np.int64) if values.dtype.kind == "f" else values
        values = np.asarray(apply_voi_lut(values, ds, index=0, prefer_lut=True), np.float64)
        lo, hi = 0.0, float(2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1)
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        values = np.asarray(apply_voi_lut(values.astype(np.float64), ds, index=0))  # in [lo, hi]
    scaled = (values.astype(np.float64) - lo) / max(hi - lo, 1e-9) * 255.0 + 0.5
    lut = np.clip(scaled, 0, 255).astype(np.uint8)
    if str(ds.PhotometricInterpretation).strip().upper() == "MONOCHROME1":
        lut = 255 - lut  # MONOCHROME1: the lowest value is white
    return lut, low


def to_gray8(ds: Any) -> np.ndarray:
    """The first frame as the 2-D uint8 picture a viewer shows (multi-frame: the first frame)."""
    from pydicom.pixels import apply_color_lut, pixel_array

    photometric = str(ds.PhotometricInterpretation).strip().upper()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = (
                pixel_array(ds, index=0)
                if int(ds.get("NumberOfFrames", 1) or 1) > 1
                else (ds.pixel_array)
            )
            if photometric == "PALETTE COLOR":
                pixels = apply_color_lut(pixels, ds)
    except Exception as exc:
        raise CorruptImageError(
            f"the DICOM pixel data cannot be decoded ({type(exc).__name__})"
        ) from exc
    if pixels.ndim == 3:  # RGB after pydicom's YBR conversion, or a palette lookup
        if pixels.dtype != np.uint8:
            top = float(2 ** int(ds.get("BitsStored", 16)) - 1)
            if photometric == "PALETTE COLOR":
                top = 65535.0
            pixels = np.clip(pixels.astype(np.float32) / top * 255 + 0.5, 0, 255)
            pixels = pixels.astype(np.uint8)
        return cv2.cvtColor(np.ascontiguousarray(pixels[..., :3]), cv2.COLOR_RGB2GRAY)
    if pixels.ndim != 2:
        raise CorruptImageError(f"the DICOM pixel data has an unexpected shape {pixels.shape}")
    lut, offset = _display_lut(ds)
    if offset == 0 and pixels.dtype.kind == "u":
        # Unsigned stored values index the table as they are, values above it clipped to its
        # last entry in the same pass: half the time of the general path on a 15-bit 1841x1955
        # CR (no int32 copy).
        return lut.take(pixels, mode="clip")
    index = np.clip(pixels.astype(np.int32) - offset, 0, lut.size - 1)
    return lut[index]
