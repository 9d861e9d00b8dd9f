"""The node's answers as DICOM objects, in the film's own study: a TID 1500 measurement report
(Comprehensive 3D SR) and a Secondary Capture of the heatmap overlay (highdicom builds both).

Codes come from DCM and SNOMED CT where they exist; one private code (scheme `99CXRAI`) names the
decision threshold, which neither defines. Every UID is derived from the source instance and the
model version, so a result made twice (a film sent twice, a send retried after a crash) is the same
object with the same UIDs, and a PACS stores it once.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import warnings
from dataclasses import dataclass

import cv2
import highdicom as hd
import numpy as np
from pydicom import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

MANUFACTURER = "cxr-pneumonia"
NOT_FOR_DIAGNOSTIC_USE = "Not for diagnostic use: research software, not a medical device."
PNEUMONIA = Code("233604007", "SCT", "Pneumonia")
CHEST_RADIOGRAPH = Code("399208008", "SCT", "Plain chest X-ray")
NOT_DONE = Code("385660001", "SCT", "Not done")
THRESHOLD = Code("CXR-THRESHOLD", "99CXRAI", "Decision threshold")
SR_SERIES_NUMBER = 9901
SC_SERIES_NUMBER = 9902


def silence_highdicom() -> None:
    """highdicom logs UIDs at INFO and warns quoting the patient's name: neither may reach a log.
    Process-wide, set once before any worker starts: warnings filters are global, and a per-call
    `catch_warnings` is not thread-safe (another thread's exit can restore filters without it)."""
    logging.getLogger("highdicom").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="highdicom")


@dataclass(frozen=True)
class Finding:
    """What the engine said about one film, or why it did not analyse it."""

    model_name: str
    model_version: str
    probability: float | None = None
    label: str | None = None
    threshold: float | None = None
    warnings: tuple[str, ...] = ()
    refusal: str | None = None  # the reason the film was not analysed
    overlay_bgr: np.ndarray | None = None  # the engine's heatmap overlay (BGR, uint8)


def _uid(source: Dataset, model_version: str, kind: str) -> str:
    return generate_uid(entropy_srcs=[str(source.SOPInstanceUID), model_version, kind])


def _series_uid(source: Dataset, model_version: str, kind: str) -> str:
    return generate_uid(entropy_srcs=[str(source.SeriesInstanceUID), model_version, kind])


def _evidence(source: Dataset) -> Dataset:
    """The source's header without its pixels, every module highdicom copies present."""
    header = Dataset()
    for element in source:
        if element.keyword not in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
            header.add(copy.deepcopy(element))
    for keyword in (
        "PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber",
        "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName",
    ):  # fmt: skip
        if keyword not in header:
            setattr(header, keyword, None)
    return header


def _dated(result: Dataset) -> Dataset:
    """Series date and time of the analysis, so a viewer lists the result series under a date."""
    now = dt.datetime.now()
    result.SeriesDate, result.SeriesTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    return result


def _comment(text: str) -> hd.sr.TextContentItem:
    return hd.sr.TextContentItem(
        name=codes.DCM.Comment, value=text[:1024], relationship_type="CONTAINS"
    )


def structured_report(source: Dataset, finding: Finding) -> Dataset:
    """The TID 1500 report: the pneumonia finding, its probability, the label and threshold, the
    model, the source image referenced, the warnings and the disclaimer; for a refused film the
    finding is "not done" with the reason and no probability."""
    evidence = _evidence(source)
    algorithm = hd.sr.AlgorithmIdentification(
        name=finding.model_name, version=finding.model_version
    )
    if finding.refusal is None:
        measurements = [
            hd.sr.Measurement(
                name=codes.DCM.Probability,
                value=float(finding.probability),
                unit=codes.UCUM.NoUnits,
                algorithm_id=algorithm,
            ),
            hd.sr.Measurement(
                name=THRESHOLD,
                value=float(finding.threshold),
                unit=codes.UCUM.NoUnits,
                algorithm_id=algorithm,
            ),
        ]
        answer = codes.SCT.Present if finding.label == "PNEUMONIA" else codes.SCT.Absent
        notes = [*finding.warnings, NOT_FOR_DIAGNOSTIC_USE]
    else:
        measurements, answer = [], NOT_DONE
        notes = [f"Not analysed: {finding.refusal}", NOT_FOR_DIAGNOSTIC_USE]
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=_uid(source, finding.model_version, "tracking"),
            identifier="pneumonia classification",
        ),
        finding_type=PNEUMONIA,
        algorithm_id=algorithm,
        measurements=measurements or None,
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(name=PNEUMONIA, value=answer)],
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(evidence)],
    )
    for note in notes:
        group[0].ContentSequence.append(_comment(note))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(
            observer_device_context=hd.sr.ObserverContext(
                observer_type=codes.DCM.Device,
                observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
                    uid=generate_uid(entropy_srcs=[MANUFACTURER, finding.model_version]),
                    name=finding.model_name,
                    manufacturer_name=MANUFACTURER,
                    model_name=finding.model_version,
                ),
            )
        ),
        procedure_reported=CHEST_RADIOGRAPH,
        imaging_measurements=[group],
    )
    document = hd.sr.Comprehensive3DSR(
        evidence=[evidence],
        content=report[0],
        series_instance_uid=_series_uid(source, finding.model_version, "sr"),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=_uid(source, finding.model_version, "sr"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        series_description=f"AI pneumonia result ({finding.model_name}), not for diagnosis",
    )
    return _dated(document)


def heatmap_capture(source: Dataset, finding: Finding) -> Dataset:
    """The overlay as an 8-bit RGB Secondary Capture in the film's study (a new series)."""
    rgb = np.ascontiguousarray(cv2.cvtColor(finding.overlay_bgr, cv2.COLOR_BGR2RGB))
    orientation = source.get("PatientOrientation")
    if not orientation or len(orientation) != 2:
        orientation = ("L", "F")  # a frontal film as displayed: patient's left on the right
    capture = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=_evidence(source),
        pixel_array=rgb,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        series_instance_uid=_series_uid(source, finding.model_version, "sc"),
        series_number=SC_SERIES_NUMBER,
        sop_instance_uid=_uid(source, finding.model_version, "sc"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        patient_orientation=tuple(orientation),
        transfer_syntax_uid=ExplicitVRLittleEndian,
        series_description="AI pneumonia evidence heatmap, not for diagnosis",
    )
    capture.BurnedInAnnotation = "NO"
    capture.ImageComments = NOT_FOR_DIAGNOSTIC_USE
    return _dated(capture)
