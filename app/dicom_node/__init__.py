"""`python -m app dicom-node`: the model as a DICOM node a PACS sends films to."""

from app.dicom_node.node import DicomNode

__all__ = ["DicomNode"]
