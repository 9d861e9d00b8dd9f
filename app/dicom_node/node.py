"""The DICOM node: a C-STORE SCP that answers at once, analyses each film after, and sends a
structured report and a heatmap capture back into the film's study.

Threads: pynetdicom's server (one per association) spools each film and answers; analysis workers
run the same `Predictor` as POST /predict on the received Part-10 bytes; one sender empties the
outbox to the destination with back-off while it is down. Every step goes through the spool on
disk (see `spool.py`), so a restart loses nothing. Logs carry hashed study/series ids, never a
patient's data.
"""

from __future__ import annotations

import hashlib
import io
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom.uid import AllTransferSyntaxes
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    BasicTextSRStorage,
    ColorSoftcopyPresentationStateStorage,
    Comprehensive3DSRStorage,
    ComprehensiveSRStorage,
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    EnhancedSRStorage,
    GrayscaleSoftcopyPresentationStateStorage,
    KeyObjectSelectionDocumentStorage,
    MultiFrameTrueColorSecondaryCaptureImageStorage,
    SecondaryCaptureImageStorage,
    Verification,
)

from app.dicom_node.destinations import Destination, DestinationDown, parse_destination
from app.dicom_node.metrics import NodeMetrics
from app.dicom_node.results import (
    MANUFACTURER,
    Finding,
    heatmap_capture,
    silence_highdicom,
    structured_report,
)
from app.dicom_node.spool import Spool
from app.recording import answer_log_from, refusal_record
from app.settings import Settings
from engine import Predictor
from engine.records.rows import answer_row
from imaging import ImageError
from imaging.dicom import decodable_transfer_syntaxes, parse

SOURCE = "dicom-node"  # where the answers' records say they came from
log = logging.getLogger("app.dicom_node")
for _name in ("pynetdicom", "httpx"):  # their INFO lines print AE titles, UIDs and URLs
    logging.getLogger(_name).setLevel(logging.WARNING)

FILM_CLASSES = (
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
)
# What an AI (this one or another) makes: accepted so a PACS that routes everything back does not
# see failures, and never analysed, so nothing loops.
RESULT_CLASSES = (
    BasicTextSRStorage,
    EnhancedSRStorage,
    ComprehensiveSRStorage,
    Comprehensive3DSRStorage,
    KeyObjectSelectionDocumentStorage,
    SecondaryCaptureImageStorage,
    MultiFrameTrueColorSecondaryCaptureImageStorage,
    GrayscaleSoftcopyPresentationStateStorage,
    ColorSoftcopyPresentationStateStorage,
)
# C-STORE failure statuses (PS3.4 B.2.3: 0xCxxx "cannot understand", 0xA900 "does not match").
CORRUPT = 0xC210
TOO_LARGE = 0xC211
NO_PIXELS = 0xA900
SEND_BATCH = 50


def hashed(uid: Any) -> str:
    """A stable id for a study or series in the logs that reveals nothing."""
    return hashlib.sha256(str(uid).encode()).hexdigest()[:12]


def parse_callers(entries: list[str]) -> list[tuple[str, str | None]]:
    callers = []
    for entry in entries:
        title, _, host = entry.strip().partition("@")
        callers.append((title.strip(), host.strip() or None))
    return callers


@dataclass
class Job:
    film: Path
    arrived: float  # time.time() of the C-STORE, or the file's time after a restart


class DicomNode:
    """`start()` listens and works in background threads; `stop()` ends them."""

    def __init__(
        self,
        settings: Settings,
        predictor: Predictor,
        destination: Destination | str | None = "settings",
        workers: int = 1,
    ) -> None:
        self.settings = settings
        self.predictor = predictor
        self.spool = Spool(settings.dicom_spool_dir)
        if destination == "settings":
            destination = parse_destination(settings.dicom_destination, settings.dicom_ae_title)
        self.destination = destination
        self.metrics = NodeMetrics()
        self.callers = parse_callers(settings.dicom_allowed_callers)
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.wake_sender = threading.Event()
        self.stopping = threading.Event()
        self.workers = workers
        self.threads: list[threading.Thread] = []
        self.server: Any = None
        self.metrics_server: Any = None
        self.ae = self._application_entity()
        self.answers = answer_log_from(settings)
        silence_highdicom()

    # -- association and C-STORE ----------------------------------------------------------------

    def _application_entity(self) -> AE:
        ae = AE(ae_title=self.settings.dicom_ae_title)
        ae.add_supported_context(Verification)
        for sop_class in FILM_CLASSES:
            ae.add_supported_context(sop_class, decodable_transfer_syntaxes())
        for sop_class in RESULT_CLASSES:
            ae.add_supported_context(sop_class, list(AllTransferSyntaxes))
        ae.maximum_pdu_size = 0  # no limit: large films arrive in fewer PDUs
        ae.maximum_associations = 32
        ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = 60
        return ae

    def allowed(self, calling_ae: str, host: str) -> bool:
        if not self.callers:
            return True
        return any(
            title == calling_ae and (want is None or want == host) for title, want in self.callers
        )

    def _on_requested(self, event: Any) -> None:
        calling = event.assoc.requestor.primitive.calling_ae_title.strip()
        host = event.assoc.requestor.address
        if not self.allowed(calling, host):
            log.warning(
                "association from %s at %s refused: not in DICOM_ALLOWED_CALLERS",
                calling,
                host,
                extra={"calling_ae": calling, "peer": host},
            )
            self.metrics.rejected_associations.inc()
            event.assoc.acse.send_reject(0x01, 0x01, 0x03)  # permanent: calling AE not known

    def _refuse_store(self, reason: str, status: int) -> int:
        self.metrics.failed_stores.labels(reason).inc()
        log.warning(
            "C-STORE refused (%s): status 0x%04X",
            reason,
            status,
            extra={"outcome": reason, "status": f"0x{status:04X}"},
        )
        return status

    def _on_store(self, event: Any) -> int:
        """Spool the film and answer; the analysis runs after, in a worker."""
        arrived = time.time()
        if event.context.abstract_syntax not in FILM_CLASSES:
            self.metrics.ignored.inc()
            return 0x0000
        data = event.encoded_dataset(include_meta=True)
        try:
            ds = parse(data)
            uid = str(ds.SOPInstanceUID)
            rows, columns = int(ds.Rows), int(ds.Columns)
            frames = int(ds.get("NumberOfFrames", 1) or 1)
            has_pixels = "PixelData" in ds
            own = str(ds.get("Manufacturer", "")) == MANUFACTURER
        except Exception:  # pydicom raises many kinds; the caller gets a status, never a crash
            return self._refuse_store("corrupt", CORRUPT)
        if own:
            self.metrics.ignored.inc()
            return 0x0000
        if not has_pixels:
            return self._refuse_store("no_pixels", NO_PIXELS)
        if rows * columns * frames > self.settings.max_image_pixels:
            return self._refuse_store("too_large", TOO_LARGE)
        film = self.spool.put_film(uid, data)
        self.metrics.received.inc()
        self.metrics.pending_films.inc()
        self.jobs.put(Job(film, arrived))
        return 0x0000

    # -- analysis -------------------------------------------------------------------------------

    def analyse(self, job: Job) -> str:
        """Results of one spooled film into the outbox; the film leaves the inbox after."""
        if not job.film.exists():  # the same film arrived twice and is already done
            self.metrics.pending_films.dec()
            return "duplicate"
        data = job.film.read_bytes()
        source = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        card = self.predictor.bundle.card
        heatmap = self.predictor.gradcam is not None
        request_id = uuid.uuid4().hex[:16]
        try:
            answer = self.predictor.predict(data, heatmap=heatmap)
        except ImageError as exc:
            self._record(refusal_record(exc, request_id, SOURCE, card.version, data))
            reason = getattr(exc, "code", type(exc).__name__)
            finding = Finding(card.name, card.version, refusal=str(exc))
            self.metrics.refused.labels(reason).inc()
            outcome = f"refused:{reason}"
        else:
            finding = Finding(
                card.name,
                card.version,
                probability=answer.probability,
                label=answer.label,
                threshold=answer.threshold,
                warnings=answer.warnings,
                overlay_bgr=answer.heatmap.overlay if answer.heatmap else None,
            )
            self.metrics.analysed.labels(answer.label).inc()
            self._record(answer_row(answer, request_id, SOURCE, card.version, data))
            outcome = answer.label
        results = [structured_report(source, finding)]
        if finding.overlay_bgr is not None:
            results.append(heatmap_capture(source, finding))
        for result in results:
            self.spool.put_result(result)
        job.film.unlink(missing_ok=True)
        self.metrics.pending_films.dec()
        seconds = time.time() - job.arrived
        self.metrics.film_seconds.observe(seconds)
        fields = {
            "study": hashed(source.get("StudyInstanceUID")),
            "series": hashed(source.get("SeriesInstanceUID")),
            "outcome": outcome,
            "results": len(results),
            "ms": round(seconds * 1000, 1),
        }
        log.info(
            "film of study %s series %s: %s, %d result(s) in the outbox %.0f ms after arrival",
            *(fields[k] for k in ("study", "series", "outcome", "results", "ms")),
            extra=fields,
        )
        self.wake_sender.set()
        return outcome

    def _record(self, row: dict) -> None:
        if self.answers is not None:
            self.answers.submit(row)

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            try:
                self.analyse(job)
            except Exception as exc:  # a film that breaks the analysis must not stop the node
                log.error(
                    "film not analysed (%s); kept in the spool's failed/",
                    type(exc).__name__,
                    extra={"error": type(exc).__name__},
                )
                if job.film.exists():
                    self.spool.fail(job.film)
                    self.metrics.pending_films.dec()

    # -- sending --------------------------------------------------------------------------------

    def send_pending(self) -> int:
        """One pass over the outbox; returns how many results remain. Raises DestinationDown."""
        files = self.spool.results()
        if not files or self.destination is None:
            return len(files)
        batch = files[:SEND_BATCH]
        outcome = self.destination.send(batch)
        for path, stored in outcome.items():
            if stored:
                path.unlink(missing_ok=True)
                self.metrics.sent.inc()
            else:
                self.spool.fail(path)
                self.metrics.send_failures.inc()
                log.error("result refused by the destination; kept in the spool's failed/")
        return len(files) - len(outcome)

    def _send(self) -> None:
        delay = 1.0
        down = False
        while not self.stopping.is_set():
            try:
                remaining = self.send_pending()
            except Exception as exc:  # DestinationDown, or a broken association
                waiting = len(self.spool.results())
                self.metrics.retrying.set(waiting)
                if not down:
                    reason = str(exc) if isinstance(exc, DestinationDown) else type(exc).__name__
                    log.warning(
                        "destination unreachable (%s); %d result(s) wait in the spool",
                        reason,
                        waiting,
                        extra={"reason": reason, "waiting": waiting},
                    )
                down = True
                self.stopping.wait(delay)
                delay = min(delay * 2, self.settings.dicom_retry_max_seconds)
                continue
            if down:
                log.info("destination reachable again")
            down, delay = False, 1.0
            self.metrics.retrying.set(0)
            if remaining == 0 or self.destination is None:
                self.wake_sender.wait(5.0)
                self.wake_sender.clear()

    # -- life cycle -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> DicomNode:
        for film in self.spool.films():  # left by a previous run: analysed first
            self.metrics.pending_films.inc()
            self.jobs.put(Job(film, film.stat().st_mtime))
        handlers = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_REQUESTED, self._on_requested)]
        self.server = self.ae.start_server(
            (self.settings.dicom_host, self.settings.dicom_port),
            block=False,
            evt_handlers=handlers,
        )
        for index in range(self.workers):
            self._thread(self._work, f"dicom-analysis-{index}")
        self._thread(self._send, "dicom-sender")
        if self.settings.dicom_metrics_port:
            from prometheus_client import start_http_server

            self.metrics_server, _ = start_http_server(
                self.settings.dicom_metrics_port,
                addr=self.settings.dicom_host,
                registry=self.metrics.registry,
            )
        return self

    def _thread(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def stop(self) -> None:
        """Stop listening, finish the films in the queue, stop sending."""
        if self.server is not None:
            self.server.shutdown()
        for _ in range(self.workers):
            self.jobs.put(None)
        self.stopping.set()
        self.wake_sender.set()
        for thread in self.threads:
            thread.join(timeout=60)
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
        if self.answers is not None:
            self.answers.close()

    def __enter__(self) -> DicomNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run(settings: Settings) -> None:
    """`python -m app dicom-node`: load the model, listen, work until SIGTERM or Ctrl-C."""
    import signal

    from app.logs import configure_logging
    from app.middleware import available_cores
    from engine.runtime import mark_serving_process

    mark_serving_process()
    configure_logging(settings.log_level, settings.log_format)
    try:
        Spool(settings.dicom_spool_dir)  # before the model loads: a bad spool fails at once
    except OSError as exc:
        log.error(
            "the spool %s cannot be written (%s): set DICOM_SPOOL_DIR to a writable folder "
            "(in a container, mount a volume at /spool)",
            settings.dicom_spool_dir,
            exc.strerror or type(exc).__name__,
        )
        raise SystemExit(2) from None
    started = time.perf_counter()
    log.info("loading the model from %s", settings.model_dir)
    predictor = Predictor.from_settings(settings)
    node = DicomNode(settings, predictor, workers=available_cores()).start()
    where = node.destination.describe() if node.destination else "the spool's outbox only"
    metrics = (
        f"; metrics at http://{settings.dicom_host}:{settings.dicom_metrics_port}/metrics"
        if settings.dicom_metrics_port
        else ""
    )
    log.info(
        "DICOM node %s ready at %s:%d (model %s loaded in %.1f s); results go to %s%s",
        settings.dicom_ae_title,
        settings.dicom_host,
        node.port,
        predictor.bundle.version,
        time.perf_counter() - started,
        where,
        metrics,
    )
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    log.info("stopping: finishing the films in hand; the rest wait in %s", node.spool.root)
    node.stop()
