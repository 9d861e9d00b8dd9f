"""A local Orthanc (Debian's `orthanc` package) wired to the node both ways, run in the foreground
on loopback: for the tests, the benchmark and a first look without containers.

It receives films on its DICOM port, routes CR and DX to the node (deploy/orthanc/
route-to-node.lua) and stores what the node sends back; its REST API and web UI are on the HTTP
port. The same configuration, with container host names, is what `docker compose --profile pacs`
starts.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "orthanc"
NODE_MODALITY = "cxr-ai"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def orthanc_binary() -> str | None:
    return shutil.which("Orthanc")


def orthanc_config(
    storage: Path, dicom_port: int, http_port: int, node_ae: str, node_host: str, node_port: int
) -> dict[str, Any]:
    """deploy/orthanc/orthanc.json (what compose runs) with this machine's paths and ports."""
    config = json.loads((DEPLOY / "orthanc.json").read_text())
    config.update(
        StorageDirectory=str(storage),
        IndexDirectory=str(storage),
        DicomPort=dicom_port,
        HttpPort=http_port,
        RemoteAccessAllowed=False,
        DicomModalities={NODE_MODALITY: [node_ae, node_host, node_port]},
        LuaScripts=[str(DEPLOY / "route-to-node.lua")],
    )
    return config


class LocalOrthanc:
    """`Orthanc config.json` in the foreground; `start()` waits for its REST API."""

    def __init__(
        self,
        folder: Path,
        node_ae: str,
        node_port: int,
        node_host: str = "127.0.0.1",
        dicom_port: int | None = None,
        http_port: int | None = None,
    ):
        """Ports left as None are free ones picked here (the tests and the benchmark)."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.dicom_port = dicom_port or free_port()
        self.http_port = http_port or free_port()
        self.config_path = self.folder / "orthanc.json"
        config = orthanc_config(
            self.folder / "db", self.dicom_port, self.http_port, node_ae, node_host, node_port
        )
        self.config_path.write_text(json.dumps(config, indent=2))
        self.process: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 60.0) -> LocalOrthanc:
        binary = orthanc_binary()
        if binary is None:
            raise RuntimeError("Orthanc is not installed (Debian: apt-get install orthanc)")
        with open(self.folder / "orthanc.log", "ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [binary, str(self.config_path)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited; see {self.folder / 'orthanc.log'}")
            try:
                if httpx.get(f"{self.url}/system", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("Orthanc did not answer in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=30)
        response.raise_for_status()
        return response.json() if "json" in response.headers.get("content-type", "") else response

    def study_series(self, study_instance_uid: str) -> dict[str, list[str]]:
        """Modality -> instance ids of the study, as Orthanc holds it now."""
        found = httpx.post(
            f"{self.url}/tools/find",
            json={"Level": "Study", "Query": {"StudyInstanceUID": study_instance_uid}},
            timeout=30,
        ).json()
        series: dict[str, list[str]] = {}
        for study in found:
            for item in self.get(f"/studies/{study}/series"):
                modality = item["MainDicomTags"].get("Modality", "")
                series.setdefault(modality, []).extend(item["Instances"])
        return series

    def wait_for(
        self, study_instance_uid: str, modalities: dict[str, int], timeout: float = 60.0
    ) -> dict[str, list[str]]:
        """Wait until the study holds at least the given count of instances per modality."""
        deadline = time.monotonic() + timeout
        series: dict[str, list[str]] = {}
        while time.monotonic() < deadline:
            series = self.study_series(study_instance_uid)
            if all(len(series.get(m, [])) >= n for m, n in modalities.items()):
                return series
            time.sleep(0.1)
        raise TimeoutError(f"the study holds {series}, waited for {modalities}")

    def file(self, instance_id: str) -> bytes:
        return self.get(f"/instances/{instance_id}/file").content

    def __enter__(self) -> LocalOrthanc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def demo(http_port: int = 8042, dicom_port: int = 4242) -> None:
    """`make pacs`: the node on the shipped model and a local Orthanc wired to it, until Ctrl-C."""
    import signal
    import tempfile
    import threading

    from app.dicom_node.destinations import StoreScu
    from app.dicom_node.node import DicomNode
    from app.logs import configure_logging
    from app.settings import Settings
    from engine import Predictor

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    print("loading the model...", flush=True)
    node = DicomNode(settings, Predictor.from_settings(settings), destination=None).start()
    folder = Path(tempfile.mkdtemp(prefix="cxr-orthanc-"))
    orthanc = LocalOrthanc(
        folder, settings.dicom_ae_title, node.port, dicom_port=dicom_port, http_port=http_port
    ).start()
    node.destination = StoreScu("ORTHANC", "127.0.0.1", dicom_port, settings.dicom_ae_title)
    print(
        f"Orthanc (a demo PACS) at {orthanc.url}/app/explorer.html: upload a CR or DX film "
        f"there and open its study; the AI report (SR) and heatmap (OT) series appear within "
        f"seconds. The node {settings.dicom_ae_title} listens on 127.0.0.1:{node.port}, "
        f"Orthanc's DICOM port is {dicom_port}, its files are in {folder}. Ctrl-C stops both.",
        flush=True,
    )
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    node.stop()
    orthanc.stop()


if __name__ == "__main__":
    demo()
