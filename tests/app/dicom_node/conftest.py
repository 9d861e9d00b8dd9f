"""A node on the shipped model, and a receiving SCP standing in for the PACS."""

from __future__ import annotations

import io
import tempfile
import threading
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ComputedRadiographyImageStorage
from pynetdicom import AE, evt
from pynetdicom.sop_class import Comprehensive3DSRStorage, SecondaryCaptureImageStorage

from app.dicom_node import DicomNode
from app.dicom_node.destinations import StoreScu
from app.settings import Settings
from engine import Predictor
from tests.dicom_files import grayscale_dicom
from tests.images import synthetic_film


def cr_film(seed: int = 0, **header) -> bytes:
    """A synthetic chest film stored as a CR, with a study of its own unless one is given."""
    header.setdefault("Modality", "CR")
    data = grayscale_dicom(synthetic_film(seed, pneumonia=bool(seed % 2)), **header)
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = ComputedRadiographyImageStorage
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
        if keyword not in ds:
            setattr(ds, keyword, pydicom.uid.generate_uid())
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


class Receiver:
    """A C-STORE SCP that keeps what it is sent (the PACS in these tests)."""

    def __init__(self, port: int = 0) -> None:
        self.datasets: list[pydicom.Dataset] = []
        self.lock = threading.Lock()
        ae = AE(ae_title="PACS")
        for sop_class in (Comprehensive3DSRStorage, SecondaryCaptureImageStorage):
            ae.add_supported_context(sop_class)
        self.server = ae.start_server(
            ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._store)]
        )
        self.port = self.server.server_address[1]

    def _store(self, event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        with self.lock:
            self.datasets.append(ds)
        return 0x0000

    def wait_for(self, count: int, timeout: float = 60.0) -> list[pydicom.Dataset]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.datasets) >= count:
                    return list(self.datasets)
            time.sleep(0.05)
        raise AssertionError(f"received {len(self.datasets)} objects, expected {count}")

    def stop(self) -> None:
        self.server.shutdown()


def send(port: int, films: list[bytes], calling: str = "MODALITY", called: str = "CXR_AI"):
    """C-STORE each Part-10 film's bytes as they are (pynetdicom sends a file's encoded dataset
    without re-encoding it); the statuses, None for a film no context was accepted for, or None
    for all when the association was refused."""
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index, film in enumerate(films):
            path = Path(folder) / f"{index}.dcm"
            path.write_bytes(film)
            paths.append(path)
        headers = [pydicom.dcmread(path, stop_before_pixels=True) for path in paths]
        ae = AE(ae_title=calling)
        for ds in headers:
            ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
        assoc = ae.associate("127.0.0.1", port, ae_title=called)
        if not assoc.is_established:
            return None
        statuses = []
        try:
            for path in paths:
                try:
                    statuses.append(int(assoc.send_c_store(path).Status))
                except ValueError:  # no presentation context accepted for it
                    statuses.append(None)
        finally:
            assoc.release()
        return statuses


@pytest.fixture(scope="session")
def node_predictor(shipped_bundle_dir: Path) -> Predictor:
    return Predictor.from_directory(shipped_bundle_dir)


@pytest.fixture
def receiver():
    pacs = Receiver()
    yield pacs
    pacs.stop()


def node_settings(tmp_path: Path, **overrides) -> Settings:
    values = {
        "dicom_port": 0,
        "dicom_metrics_port": 0,
        "dicom_spool_dir": tmp_path / "spool",
        "dicom_retry_max_seconds": 0.5,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture
def node(tmp_path, node_predictor, receiver):
    destination = StoreScu("PACS", "127.0.0.1", receiver.port, "CXR_AI")
    with DicomNode(node_settings(tmp_path), node_predictor, destination) as running:
        yield running
