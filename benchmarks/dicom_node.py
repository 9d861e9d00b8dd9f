"""The DICOM node against POST /predict on the same films, in the same run.

Films: the full-resolution samples (and pydicom-data's adult CR, RG1_UNCR.dcm) stored as CR
DICOMs, each in a study of its own. The node runs as `python -m app dicom-node` (2 analysis
workers on this 2-core machine), its destination a local Orthanc (Debian's package). Measured:
- one film at a time: from the C-STORE to the node until its SR is in Orthanc (polled every 20 ms);
- a burst of every film at once: films per second from the first C-STORE to the last SR in
  Orthanc, and the C-STORE answer time the modality sees;
- POST /predict (heatmap on, the work the node does) on the same files, one at a time and with 2
  concurrent clients.

python -m benchmarks.dicom_node [--films N]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import psutil
import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ComputedRadiographyImageStorage, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE

from app.dicom_node.destinations import without_nagle
from app.dicom_node.orthanc import LocalOrthanc, free_port, orthanc_binary
from benchmarks.common import REPO, machine, sample_uploads, summarize_ms, write_result
from benchmarks.http_load import tree_rss_mb
from benchmarks.server import start_uvicorn


def cr_from_picture(data: bytes) -> bytes:
    """A JPEG/PNG film as an 8-bit MONOCHROME2 CR in a study of its own."""
    gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ComputedRadiographyImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName, ds.Modality, ds.ViewPosition = "BENCH", "Bench^Film", "CR", "PA"
    ds.Rows, ds.Columns = gray.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = gray.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def fresh_uids(film: bytes) -> bytes:
    """The same film as another study (so every SR is a new object in Orthanc)."""
    ds = pydicom.dcmread(io.BytesIO(film))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def films(count: int) -> list[bytes]:
    pictures = [cr_from_picture(b) for n, b in sample_uploads().items() if "synthetic" not in n]
    pictures.append(Path(get_testdata_file("RG1_UNCR.dcm")).read_bytes())
    return [fresh_uids(pictures[i % len(pictures)]) for i in range(count)]


class Modality:
    """One association to the node, C-STOREs over it; each send's answer time is kept."""

    def __init__(self, port: int, example: bytes) -> None:
        ae = AE(ae_title="BENCH")
        ae.add_requested_context(ComputedRadiographyImageStorage, ExplicitVRLittleEndian)
        ae.maximum_pdu_size = 0
        self.assoc = ae.associate("127.0.0.1", port, ae_title="CXR_AI")
        assert self.assoc.is_established, "the node refused the association"
        without_nagle(self.assoc)  # as a DCMTK-based modality or router does
        self.answer_seconds: list[float] = []

    def store(self, film: bytes) -> float:
        ds = pydicom.dcmread(io.BytesIO(film))
        started = time.perf_counter()
        status = self.assoc.send_c_store(ds)
        self.answer_seconds.append(time.perf_counter() - started)
        assert int(status.Status) == 0, f"C-STORE status 0x{int(status.Status):04X}"
        return started

    def close(self) -> None:
        self.assoc.release()


def reports_seen(orthanc: LocalOrthanc, since: int, seen: dict[str, float]) -> int:
    """Poll Orthanc's change log; record when each study's SR appeared (perf_counter)."""
    changes = orthanc.get(f"/changes?since={since}&limit=1000")
    now = time.perf_counter()
    for change in changes["Changes"]:
        if change["ChangeType"] == "NewSeries":
            series = orthanc.get(f"/series/{change['ID']}")
            if series["MainDicomTags"].get("Modality") == "SR":
                study = orthanc.get(f"/studies/{series['ParentStudy']}")
                seen[study["MainDicomTags"]["StudyInstanceUID"]] = now
    return changes["Last"]


def wait_reports(orthanc, uids, since, seen, timeout=600.0) -> int:
    deadline = time.perf_counter() + timeout
    while not set(uids) <= set(seen):
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{len(set(uids) - set(seen))} SRs never reached Orthanc")
        since = reports_seen(orthanc, since, seen)
        time.sleep(0.02)
    return since


def study_uid(film: bytes) -> str:
    return str(pydicom.dcmread(io.BytesIO(film), stop_before_pixels=True).StudyInstanceUID)


def measure_node(one_by_one: list[bytes], burst: list[bytes], folder: Path) -> dict:
    node_port, metrics_port = free_port(), free_port()
    orthanc = LocalOrthanc(folder / "orthanc", "CXR_AI", node_port).start()
    env = {
        **os.environ,
        "DICOM_PORT": str(node_port),
        "DICOM_METRICS_PORT": str(metrics_port),
        "DICOM_SPOOL_DIR": str(folder / "spool"),
        "DICOM_DESTINATION": f"ORTHANC@127.0.0.1:{orthanc.dicom_port}",
        "LOG_LEVEL": "WARNING",
    }
    started = time.perf_counter()
    node = subprocess.Popen([sys.executable, "-m", "app", "dicom-node"], cwd=REPO, env=env)
    try:
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=1)
                break
            except httpx.TransportError:
                if node.poll() is not None or time.perf_counter() - started > 180:
                    raise RuntimeError("the node did not start") from None
                time.sleep(0.1)
        ready = time.perf_counter() - started
        time.sleep(1.0)
        rss_idle = tree_rss_mb(psutil.Process(node.pid))
        seen: dict[str, float] = {}
        since = orthanc.get("/changes?last")["Last"]
        modality = Modality(node_port, one_by_one[0])
        latencies = []
        for film in one_by_one:
            uid = study_uid(film)
            sent = modality.store(film)
            since = wait_reports(orthanc, [uid], since, seen)
            latencies.append(seen[uid] - sent)
        single_answers = list(modality.answer_seconds)
        modality.answer_seconds.clear()
        uids = [study_uid(f) for f in burst]
        first = time.perf_counter()
        for film in burst:
            modality.store(film)
        wait_reports(orthanc, uids, since, seen)
        elapsed = max(seen[u] for u in uids) - first
        rss_after = tree_rss_mb(psutil.Process(node.pid))
        modality.close()
        return {
            "ready_s": round(ready, 2),
            "rss_idle_mib": round(rss_idle, 1),
            "rss_after_burst_mib": round(rss_after, 1),
            "one_by_one_arrival_to_sr": summarize_ms(latencies),
            "one_by_one_c_store_answer": summarize_ms(single_answers),
            "burst_films": len(burst),
            "burst_seconds": round(elapsed, 2),
            "burst_films_per_s": round(len(burst) / elapsed, 2),
            "burst_c_store_answer": summarize_ms(modality.answer_seconds),
        }
    finally:
        node.terminate()
        node.wait(timeout=60)
        orthanc.stop()


async def _post_all(base: str, files: list[bytes], concurrency: int) -> tuple[list[float], float]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for f in files:
        queue.put_nowait(f)
    times: list[float] = []

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            while not queue.empty():
                film = queue.get_nowait()
                t0 = time.perf_counter()
                r = await http.post("/predict", files={"file": ("film.dcm", film)})
                r.raise_for_status()
                times.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return times, time.perf_counter() - started


def measure_predict(one_by_one: list[bytes], burst: list[bytes]) -> dict:
    proc, base, _ = start_uvicorn({})
    try:
        single, _ = asyncio.run(_post_all(base, one_by_one, 1))
        _, elapsed = asyncio.run(_post_all(base, burst, 2))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return {
        "one_by_one": summarize_ms(single),
        "burst_2_clients_films_per_s": round(len(burst) / elapsed, 2),
    }


def markdown(result: dict) -> str:
    node, http = result["node"], result["predict"]
    n1, nb = node["one_by_one_arrival_to_sr"], node["burst_films"]
    rows = [
        "| | DICOM node (C-STORE in, SR in Orthanc) | POST /predict (heatmap on) |",
        "|---|---|---|",
        f"| one film at a time, median (p95) | {n1['median_ms']:.0f} ms ({n1['p95_ms']:.0f}) "
        f"| {http['one_by_one']['median_ms']:.0f} ms ({http['one_by_one']['p95_ms']:.0f}) |",
        f"| burst of {nb} films, films/s | {node['burst_films_per_s']:.1f} "
        f"| {http['burst_2_clients_films_per_s']:.1f} (2 clients) |",
    ]
    answer = node["burst_c_store_answer"]
    return "\n".join(
        [
            f"{result['films']['one_by_one']} films one at a time, then a burst of {nb}: the "
            "full-resolution samples and pydicom-data's adult CR (RG1_UNCR.dcm) as CR DICOMs. "
            "The node sends an SR and a heatmap capture per film to a local Orthanc; "
            "/predict returns the probability and the heatmap.",
            "",
            *rows,
            "",
            f"The modality's C-STORE is answered in {answer['median_ms']:.1f} ms median "
            f"(p99 {answer['p99_ms']:.1f}) during the burst: the film is spooled and analysed "
            f"after. Node ready (model loaded, port open) {node['ready_s']:.1f} s after start; "
            f"its RSS {node['rss_idle_mib']:.0f} MiB idle and {node['rss_after_burst_mib']:.0f} "
            "MiB after the burst.",
            "",
            f"Measured {result['machine']['when']}, {result['machine']['cpus']} cores.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--films", type=int, default=24, help="films one at a time")
    parser.add_argument("--burst", type=int, default=48, help="films in the burst")
    args = parser.parse_args()
    if orthanc_binary() is None:
        raise SystemExit("benchmarks.dicom_node needs Orthanc (apt-get install orthanc)")
    one_by_one, burst = films(args.films), films(args.burst)
    with tempfile.TemporaryDirectory() as folder:
        node = measure_node(one_by_one, burst, Path(folder))
    http = measure_predict(one_by_one, burst)
    result = {
        "machine": machine(),
        "films": {"one_by_one": len(one_by_one), "burst": len(burst)},
        "node": node,
        "predict": http,
    }
    write_result("dicom_node", result, markdown(result))


if __name__ == "__main__":
    main()
