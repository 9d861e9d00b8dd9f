"""Where results go: STOW-RS framing and statuses, C-STORE parsing, the spool's guarantees."""

from __future__ import annotations

import email
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pydicom
import pytest

from app.dicom_node.destinations import DestinationDown, StoreScu, StowRs, parse_destination
from app.dicom_node.spool import Spool
from tests.app.dicom_node.conftest import cr_film


class StowServer:
    """A DICOMweb STOW-RS endpoint that keeps the instances posted, or answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.instances: list[pydicom.Dataset] = []
        self.status = status
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
                message = email.message_from_bytes(head + body)
                for part in message.get_payload():
                    assert part.get_content_type() == "application/dicom"
                    owner.instances.append(
                        pydicom.dcmread(io.BytesIO(part.get_payload(decode=True)))
                    )
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/dicom+json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dicom-web"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop serving and close the socket: a later connection is refused at once (with the
        socket left listening, it would wait for the client's 30 s timeout)."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def film_file(tmp_path):
    path = tmp_path / "film.dcm"
    path.write_bytes(cr_film(31))
    return path


def test_stow_rs_posts_each_instance_to_studies(film_file):
    stow = StowServer()
    try:
        assert StowRs(stow.url).send([film_file]) == {film_file: True}
        assert stow.instances[0].SOPInstanceUID == pydicom.dcmread(film_file).SOPInstanceUID
    finally:
        stow.stop()


def test_stow_rs_refusal_and_outage(film_file):
    stow = StowServer(status=409)
    try:
        assert StowRs(stow.url).send([film_file]) == {film_file: False}  # for good
        stow.status = 503
        with pytest.raises(DestinationDown):
            StowRs(stow.url).send([film_file])  # try again later
    finally:
        stow.stop()
    with pytest.raises(DestinationDown):
        StowRs(stow.url).send([film_file])  # nobody listens


def test_destinations_parse():
    store = parse_destination("PACS@pacs.example.org:104", "CXR_AI")
    assert isinstance(store, StoreScu) and store.describe() == "PACS@pacs.example.org:104"
    assert parse_destination("https://pacs/dicom-web", "CXR_AI").describe() == (
        "https://pacs/dicom-web/studies"
    )
    assert parse_destination("", "CXR_AI") is None


def test_spool_writes_whole_files_and_clears_leftovers(tmp_path):
    spool = Spool(tmp_path)
    (spool.tmp / "dead.part").write_bytes(b"half")  # a process died mid-write
    spool = Spool(tmp_path)
    assert list(spool.tmp.iterdir()) == []
    film = cr_film(32)
    path = spool.put_film("1.2.3", film)
    spool.put_film("1.2.3", film)  # the same film again: kept once
    assert spool.films() == [path] and path.read_bytes() == film
    result = spool.put_result(pydicom.dcmread(io.BytesIO(film)))
    assert spool.results() == [result]
    spool.fail(result)
    assert spool.results() == [] and (spool.failed / result.name).exists()


def test_a_uid_cannot_leave_the_spool(tmp_path):
    spool = Spool(tmp_path / "spool")
    path = spool.put_film("../../outside", b"DICM")
    assert path.parent == spool.inbox and not (tmp_path / "outside.dcm").exists()
    assert spool.put_film("1.2.840.5", b"DICM").name == "1.2.840.5.dcm"


def test_an_unreadable_result_is_set_aside_not_retried(tmp_path, receiver):
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"not dicom at all")
    store = StoreScu("PACS", "127.0.0.1", receiver.port, "CXR_AI")
    assert store.send([broken]) == {broken: False}
