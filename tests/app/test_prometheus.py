"""A real Prometheus (Debian's package) scrapes the service with the shipped scrape config; and
every metric the Grafana dashboard queries is one the service exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from benchmarks.server import free_port, start_uvicorn
from tests.conftest import REPO
from tests.images import png_bytes, synthetic_film

SCRAPE_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "cxr-dashboard.json"
PROMETHEUS = shutil.which("prometheus")


def query(base: str, promql: str) -> list[dict]:
    response = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5)
    response.raise_for_status()
    return response.json()["data"]["result"]


@pytest.mark.slow
@pytest.mark.skipif(
    PROMETHEUS is None,
    reason="needs Prometheus (Debian package 'prometheus'; .ci/run installs it when missing)",
)
def test_prometheus_scrapes_the_service(shipped_bundle_dir, tmp_path):
    service, base, _ = start_uvicorn({"MODEL_DIR": str(shipped_bundle_dir)})
    port = base.rsplit(":", 1)[1]
    config = SCRAPE_CONFIG.read_text().replace("api:8000", f"127.0.0.1:{port}")
    config = config.replace("scrape_interval: 5s", "scrape_interval: 1s")
    (tmp_path / "prometheus.yml").write_text(config)
    shutil.copy(REPO / "deploy" / "prometheus" / "alerts.yml", tmp_path / "alerts.yml")
    prom_port = free_port()
    prometheus = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    prom = f"http://127.0.0.1:{prom_port}"
    try:
        film = png_bytes(synthetic_film(3))
        for heatmap in ("false", "true", "false"):
            response = httpx.post(
                f"{base}/predict", params={"heatmap": heatmap}, files={"file": ("x.png", film)}
            )
            assert response.status_code == 200
        deadline = time.monotonic() + 60
        up, counted = [], []
        while time.monotonic() < deadline and not (up and counted):
            time.sleep(1)
            try:
                up = [r for r in query(prom, 'up{job="cxr-pneumonia"}') if r["value"][1] == "1"]
                counted = query(
                    prom,
                    'cxr_http_request_duration_seconds_count{route="/predict",status="200"} >= 3',
                )
            except httpx.HTTPError:
                continue  # Prometheus still starting
        assert up, "Prometheus never saw the target up"
        assert counted, "Prometheus never stored the request-duration histogram"
        assert query(prom, "sum(cxr_prediction_probability_bucket)")
    finally:
        prometheus.terminate()
        service.terminate()
        prometheus.wait(30)
        service.wait(30)


def test_dashboard_queries_only_exported_metrics(client):
    families = re.findall(r"^# TYPE (\S+) (\S+)$", client.get("/metrics").text, re.M)
    suffixes = {
        "counter": ("", "_total"),
        "histogram": ("_bucket", "_count", "_sum"),
        "gauge": ("",),
    }
    exported = {name + suffix for name, kind in families for suffix in suffixes.get(kind, ("",))}
    dashboard = json.loads(Path(DASHBOARD).read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 8
    used = {name for expr in exprs for name in re.findall(r"\b(cxr_[a-z_]+)", expr)}
    assert used and used <= exported, used - exported


ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(
    PROMTOOL is None,
    reason="needs promtool (Debian package 'prometheus'; .ci/run installs it when missing)",
)
def test_the_alerting_rules_are_valid():
    checked = subprocess.run([PROMTOOL, "check", "rules", str(ALERTS)], capture_output=True)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    assert b"4 rules found" in checked.stdout


def test_alerts_and_monitoring_panels_use_exported_metrics(client):
    exposed = re.findall(r"^# TYPE (\S+) \S+$", client.get("/metrics").text, re.M)
    families = {name.removesuffix("_total") for name in exposed}
    used = set(re.findall(r"\b(cxr_[a-z_]+?)(?:_total)?\b", ALERTS.read_text()))
    assert {"cxr_drift_alarm", "cxr_records_store_up", "cxr_records_lost"} <= used
    assert used <= families, used - families
    dashboard = json.loads(Path(DASHBOARD).read_text())
    exprs = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])
    for metric in ("cxr_drift_score", "cxr_window_rate", "cxr_realised", "cxr_records_pending"):
        assert metric in exprs
