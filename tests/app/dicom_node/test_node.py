"""The node end to end on loopback: a modality sends films, a receiving SCP gets the results."""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pydicom.filewriter
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless
from pynetdicom import AE
from pynetdicom.sop_class import ComputedRadiographyImageStorage, CTImageStorage, Verification

from app.dicom_node import DicomNode
from app.dicom_node.destinations import StoreScu
from app.dicom_node.results import NOT_FOR_DIAGNOSTIC_USE
from tests.app.dicom_node.conftest import Receiver, cr_film, node_settings, send
from tests.dicom_files import PATIENT


def read_report(ds: pydicom.Dataset):
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    report = hd.sr.srread(io.BytesIO(buffer.getvalue()))
    return report.content.get_image_measurement_groups()[0]


def texts(group) -> list[str]:
    """The report's comments (DCM 121106): warnings, the disclaimer, a refusal's reason."""
    return [
        item.TextValue
        for item in group[0].ContentSequence
        if item.ValueType == "TEXT" and item.ConceptNameCodeSequence[0].CodeValue == "121106"
    ]


def by_kind(datasets) -> dict[str, list[pydicom.Dataset]]:
    kinds: dict[str, list[pydicom.Dataset]] = {"SR": [], "OT": []}
    for ds in datasets:
        kinds.setdefault(ds.Modality, []).append(ds)
    return kinds


def test_echo_answers(node):
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", node.port, ae_title="CXR_AI")
    assert assoc.is_established
    assert int(assoc.send_c_echo().Status) == 0
    assoc.release()


def test_film_gets_report_and_heatmap_in_its_study(node, receiver, node_predictor):
    film = cr_film(1)
    assert send(node.port, [film]) == [0x0000]
    kinds = by_kind(receiver.wait_for(2))
    (sr,), (sc,) = kinds["SR"], kinds["OT"]
    source = pydicom.dcmread(io.BytesIO(film))
    expected = node_predictor.predict(film, heatmap=False)
    for result in (sr, sc):
        assert result.StudyInstanceUID == source.StudyInstanceUID
        assert result.PatientID == source.PatientID
        assert result.PatientName == source.PatientName
        assert result.SeriesInstanceUID != source.SeriesInstanceUID
        assert result.SOPInstanceUID != source.SOPInstanceUID
    assert sr.SeriesInstanceUID != sc.SeriesInstanceUID
    group = read_report(sr)
    measurements = {m.name.meaning: m.value for m in group.get_measurements()}
    assert measurements["Probability"] == expected.probability  # the same number as /predict
    assert measurements["Decision threshold"] == expected.threshold
    (evaluation,) = group.get_qualitative_evaluations()
    assert evaluation.value.meaning == ("Present" if expected.label == "PNEUMONIA" else "Absent")
    assert NOT_FOR_DIAGNOSTIC_USE in texts(group)
    referenced = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert referenced.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert sc.PhotometricInterpretation == "RGB" and sc.BitsAllocated == 8
    assert max(sc.Rows, sc.Columns) <= 512


def test_refused_film_gets_a_report_without_probability(node, receiver):
    lateral = cr_film(2, ViewPosition="LL")
    assert send(node.port, [lateral]) == [0x0000]
    (sr,) = receiver.wait_for(1)
    time.sleep(0.3)
    assert len(receiver.datasets) == 1  # no heatmap for a film not analysed
    group = read_report(sr)
    assert group.get_measurements() == []
    (evaluation,) = group.get_qualitative_evaluations()
    assert evaluation.value.meaning == "Not done"
    assert any(t.startswith("Not analysed: ") and "lateral" in t for t in texts(group))
    assert node.metrics.refused.labels("not_chest_xray")._value.get() == 1


def test_real_adult_cr_is_answered_with_the_population_warning(node, receiver):
    film = Path(get_testdata_file("RG1_UNCR.dcm")).read_bytes()
    assert send(node.port, [film]) == [0x0000]
    sr = by_kind(receiver.wait_for(2))["SR"][0]
    assert any("adult" in t for t in texts(read_report(sr)))


def test_results_never_analysed_again(node, receiver):
    send(node.port, [cr_film(3)])
    results = receiver.wait_for(2)
    encoded = []
    for ds in results:
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        encoded.append(buffer.getvalue())
    assert send(node.port, encoded) == [0x0000, 0x0000]  # accepted, so a PACS sees no failure
    time.sleep(0.5)
    assert len(receiver.datasets) == 2
    assert node.metrics.ignored._value.get() == 2


def test_same_film_twice_gives_the_same_objects(node, receiver):
    film = cr_film(4)
    send(node.port, [film])
    first = {ds.SOPInstanceUID for ds in receiver.wait_for(2)}
    send(node.port, [film])
    second = {ds.SOPInstanceUID for ds in receiver.wait_for(4)[2:]}
    assert first == second  # a PACS stores a repeat once


def test_unsupported_sop_class_is_refused_at_association(node):
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage)
    assert not ae.associate("127.0.0.1", node.port, ae_title="CXR_AI").is_established
    ae.add_requested_context(ComputedRadiographyImageStorage)
    assoc = ae.associate("127.0.0.1", node.port, ae_title="CXR_AI")
    assert assoc.is_established  # the association carries what the node reads, CR...
    accepted = {context.abstract_syntax for context in assoc.accepted_contexts}
    assert accepted == {ComputedRadiographyImageStorage}  # ...and not CT
    assoc.release()


@pytest.mark.filterwarnings("ignore:The value for the data element")  # the garbled bytes
def test_compressed_films_are_accepted_and_read(node, receiver, node_predictor):
    films = [cr_film(15, syntax=JPEG2000Lossless), cr_film(16, syntax=JPEGLSLossless)]
    assert send(node.port, films) == [0, 0]
    reports = by_kind(receiver.wait_for(4))["SR"]
    expected = {node_predictor.predict(f, heatmap=False).probability for f in films}
    got = {
        m.value
        for r in reports
        for m in read_report(r).get_measurements()
        if m.name.value == "122157"
    }
    assert got == expected


def test_corrupt_and_huge_films_get_failure_statuses(node, receiver, tmp_path):
    film = bytearray(cr_film(5))
    meta = io.BytesIO()
    pydicom.filewriter.write_file_meta_info(meta, pydicom.dcmread(io.BytesIO(film)).file_meta)
    at = film.index(b"\x08\x00\x18\x00", 132 + len(meta.getvalue()))  # SOP Instance UID
    start = at + 8 + int.from_bytes(film[at + 6 : at + 8], "little")
    film[start : start + 600] = np.random.default_rng(0).bytes(600)  # the rest garbled
    huge = pydicom.dcmread(io.BytesIO(cr_film(6)))
    huge.Rows = huge.Columns = 60000
    buffer = io.BytesIO()
    huge.save_as(buffer, enforce_file_format=True)
    statuses = send(node.port, [bytes(film), buffer.getvalue()])
    assert statuses[0] is not None and statuses[0] >= 0xA000, statuses
    assert statuses[1] == 0xC211
    assert receiver.datasets == []


def test_callers_outside_the_list_are_rejected(tmp_path, node_predictor, receiver, caplog):
    settings = node_settings(tmp_path, dicom_allowed_callers="MODALITY, ROUTER@127.0.0.1")
    destination = StoreScu("PACS", "127.0.0.1", receiver.port, "CXR_AI")
    with DicomNode(settings, node_predictor, destination) as node, caplog.at_level(logging.INFO):
        assert send(node.port, [cr_film(7)], calling="STRANGER") is None
        assert send(node.port, [cr_film(7)], calling="ROUTER") == [0]
        assert send(node.port, [cr_film(8)], calling="MODALITY") == [0]
        receiver.wait_for(4)
    assert node.metrics.rejected_associations._value.get() == 1
    assert "STRANGER" in caplog.text


def test_destination_down_then_up_loses_nothing_and_sends_once(tmp_path, node_predictor):
    pacs = Receiver()
    port = pacs.port
    pacs.stop()  # the PACS is down: its port refuses connections
    destination = StoreScu("PACS", "127.0.0.1", port, "CXR_AI")
    with DicomNode(node_settings(tmp_path), node_predictor, destination) as node:
        assert send(node.port, [cr_film(9), cr_film(10, ViewPosition="LL")]) == [0, 0]
        deadline = time.monotonic() + 60
        while node.metrics.retrying._value.get() < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert node.metrics.retrying._value.get() == 3  # SR + SC, and the refused film's SR
        pacs = Receiver(port)  # back up
        try:
            received = pacs.wait_for(3)
            time.sleep(1.5)  # a further pass would show a duplicate
            assert len(pacs.datasets) == 3
            assert len({ds.SOPInstanceUID for ds in received}) == 3
        finally:
            pacs.stop()
    assert list(node.spool.outbox.iterdir()) == []


def test_a_restart_finishes_what_was_spooled(tmp_path, node_predictor, receiver):
    settings = node_settings(tmp_path)
    with DicomNode(settings, node_predictor, destination=None) as node:  # keeps results
        send(node.port, [cr_film(11)])
        deadline = time.monotonic() + 60
        while len(node.spool.results()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    node.spool.put_film("1.2.3.4.5", cr_film(12))  # received just before a crash
    destination = StoreScu("PACS", "127.0.0.1", receiver.port, "CXR_AI")
    with DicomNode(settings, node_predictor, destination) as restarted:
        receiver.wait_for(4)
        deadline = time.monotonic() + 10
        while restarted.spool.results() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert restarted.spool.films() == [] and restarted.spool.results() == []


def test_logs_hold_no_patient_data(tmp_path, node_predictor, receiver, caplog, recwarn):
    destination = StoreScu("PACS", "127.0.0.1", receiver.port, "CXR_AI")
    film = cr_film(13, PatientName="Jane Quinn Doe")  # no carets: highdicom warns, quoting it
    settings = node_settings(tmp_path)
    with caplog.at_level(logging.DEBUG), DicomNode(settings, node_predictor, destination) as node:
        send(node.port, [film, cr_film(14, ViewPosition="LL")])
        receiver.wait_for(3)
    source = pydicom.dcmread(io.BytesIO(film))
    assert "film of study" in caplog.text
    leaks = [*PATIENT.values(), "Jane Quinn Doe", source.StudyInstanceUID, source.SOPInstanceUID]
    for value in leaks:
        assert str(value) not in caplog.text
        assert not any(str(value) in str(w.message) for w in recwarn)


@pytest.mark.parametrize("entry", ["nope", "AE@host", "AE@host:port"])
def test_bad_destination_is_a_clear_error(entry):
    from app.dicom_node.destinations import parse_destination

    with pytest.raises(ValueError, match="DICOM_DESTINATION"):
        parse_destination(entry, "CXR_AI")


def test_the_node_records_its_answers_with_the_film_uid_hashed(tmp_path, node_predictor, receiver):
    from engine.records import RecordStore
    from engine.records.rows import sha256

    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    settings = node_settings(tmp_path, database_url=url, records_spool_dir=tmp_path / "rec")
    destination = StoreScu("PACS", "127.0.0.1", receiver.port, "CXR_AI")
    film, lateral = cr_film(5), cr_film(6, ViewPosition="LL")
    with DicomNode(settings, node_predictor, destination) as running:
        assert send(running.port, [film, lateral]) == [0x0000, 0x0000]
        receiver.wait_for(3)
    records = RecordStore(url).latest(5)
    assert {r["source"] for r in records} == {"dicom-node"} and len(records) == 2
    answered = next(r for r in records if r["refusal_code"] is None)
    uid = pydicom.dcmread(io.BytesIO(film)).SOPInstanceUID
    assert answered["sop_instance_uid_sha256"] == sha256(str(uid).upper())
    assert answered["modality"] == "CR" and answered["probability"] is not None
    assert next(r for r in records if r["refusal_code"])["refusal_code"] == "not_chest_xray"
