"""DICOM files the tests write with pydicom: the same 8-bit film in every storage the reader must
handle (bit depths, signedness, rescale, windows, VOI LUTs, MONOCHROME1, colour, compression)."""

from __future__ import annotations

import io

import cv2
import numpy as np
from pydicom import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

# Values that identify a patient: no answer, log line or error may ever contain them.
PATIENT = {
    "PatientName": "Doe^Jane^Quinn",
    "PatientID": "PID-8675309",
    "PatientBirthDate": "19800214",
    "AccessionNumber": "ACC-4242-77",
    "InstitutionName": "St Example Hospital",
}


def _base(rows: int, columns: int, syntax=ExplicitVRLittleEndian, **header) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = header.pop("Modality", "DX")
    ds.ViewPosition = header.pop("ViewPosition", "PA")
    ds.BodyPartExamined = header.pop("BodyPartExamined", "CHEST")
    for keyword, value in {**PATIENT, **header}.items():
        setattr(ds, keyword, value)
    ds.Rows, ds.Columns = rows, columns
    return ds


def _gray8(ds: Dataset) -> Dataset:
    """8-bit unsigned MONOCHROME2 pixel description."""
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    return ds


def _to_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def grayscale_dicom(
    gray: np.ndarray,
    bits_stored: int = 8,
    signed: bool = False,
    monochrome1: bool = False,
    slope: float | None = None,
    intercept: float | None = None,
    window: bool = False,
    frames: int = 1,
    syntax=ExplicitVRLittleEndian,
    **header,
) -> bytes:
    """`gray` stored so that a correct reader displays exactly `gray` again."""
    top = 2**bits_stored - 1
    stored = np.round(gray.astype(np.float64) / 255.0 * top).astype(np.int64)
    if monochrome1:
        stored = top - stored
    if signed:
        stored -= 2 ** (bits_stored - 1)
    ds = _base(*gray.shape, syntax=syntax, **header)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.BitsAllocated = 8 if bits_stored <= 8 else 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept or 0.0
    if window:  # a window spanning the whole rescaled range: the display is unchanged
        low = -(2 ** (bits_stored - 1)) if signed else 0
        ends = np.array([low, low + top], np.float64) * (slope or 1.0) + (intercept or 0.0)
        lo, hi = ends.min(), ends.max()
        ds.WindowCenter, ds.WindowWidth = (lo + hi + 1) / 2, hi - lo + 1
    dtype = {(8, False): np.uint8, (8, True): np.int8, (16, False): np.uint16, (16, True): np.int16}
    pixels = stored.astype(dtype[(ds.BitsAllocated, signed)])
    if frames > 1:
        noise = np.random.default_rng(0).integers(0, top, (frames - 1, *gray.shape))
        pixels = np.concatenate([pixels[np.newaxis], noise.astype(pixels.dtype)])
        ds.NumberOfFrames = frames
    if syntax in (ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian):
        ds.PixelData = pixels.tobytes()
    else:
        ds.PixelData = pixels.tobytes()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        kwargs = {"j2k_cr": [20]} if syntax == JPEG2000 else {}
        ds.compress(syntax, pixels, **kwargs)
    return _to_bytes(ds)


def _spread_12bit(gray: np.ndarray, offset: int, gain: int) -> tuple[Dataset, np.ndarray]:
    """A 12-bit MONOCHROME2 dataset whose stored values are `offset + gain * gray`."""
    ds = _base(*gray.shape)
    stored = (offset + gray.astype(np.int64) * gain).astype(np.uint16)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    return ds, stored


def windowed_dicom(gray: np.ndarray, offset: int = 1000, gain: int = 8) -> bytes:
    """12-bit values far wider than the film's contrast, and the window that shows the film."""
    ds, stored = _spread_12bit(gray, offset, gain)
    lo, hi = offset, offset + 255 * gain
    ds.WindowCenter, ds.WindowWidth = (lo + hi + 1) / 2, hi - lo + 1
    ds.PixelData = stored.tobytes()
    # What the window maps to [0, 4095]; the reader scales that range to [0, 255].
    return _to_bytes(ds)


def voi_lut_dicom(gray: np.ndarray, offset: int = 500, gain: int = 4) -> bytes:
    """A VOI LUT Sequence (16-bit output) that maps the stored values back to the film."""
    from pydicom.sequence import Sequence

    ds, stored = _spread_12bit(gray, offset, gain)
    entries = 255 * gain + 1
    lut = (np.round(np.arange(entries) / gain) * 257).astype(np.uint16)
    item = Dataset()
    item.add_new("LUTDescriptor", "US", [entries, offset, 16])
    item.add_new("LUTData", "US", lut.tolist())
    ds.VOILUTSequence = Sequence([item])
    ds.PixelData = stored.tobytes()
    return _to_bytes(ds)


def rgb_dicom(gray: np.ndarray) -> bytes:
    ds = _base(*gray.shape)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.repeat(gray[..., np.newaxis], 3, axis=2).tobytes()
    return _to_bytes(ds)


def jpeg_dicom(gray: np.ndarray, quality: int = 95) -> tuple[bytes, bytes]:
    """(DICOM with the JPEG encapsulated as JPEG Baseline, the JPEG itself)."""
    ok, jpeg = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    ds = _gray8(_base(*gray.shape, syntax=JPEGBaseline8Bit))
    ds.PixelData = encapsulate([jpeg.tobytes()])
    ds["PixelData"].VR = "OB"
    return _to_bytes(ds), jpeg.tobytes()


def without_pixels(gray: np.ndarray) -> bytes:
    return _to_bytes(_gray8(_base(*gray.shape)))


def claiming_size(rows: int, columns: int) -> bytes:
    """A header that claims rows x columns, with a few bytes of pixel data."""
    ds = _gray8(_base(rows, columns))
    ds.PixelData = b"\x00" * 64
    return _to_bytes(ds)


def with_transfer_syntax(gray: np.ndarray, uid: str) -> bytes:
    """An uncompressed film relabelled with another transfer syntax (one nothing here decodes)."""
    ds = _gray8(_base(*gray.shape))
    ds.PixelData = encapsulate([gray.tobytes()])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = uid
    return _to_bytes(ds)


COMPRESSED_SYNTAXES = {
    "JPEG 2000 lossless": JPEG2000Lossless,
    "JPEG 2000 lossy": JPEG2000,
    "RLE lossless": RLELossless,
    "JPEG-LS lossless": JPEGLSLossless,
    "deflated explicit VR": DeflatedExplicitVRLittleEndian,
}
