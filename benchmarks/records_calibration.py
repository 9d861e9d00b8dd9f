"""Calibration from the record on a simulated site: the dev-test films through other
post-processing (contrast halved, then a simulated upload), answered by the shipped model and
recorded as the service records them, the true labels sent back as readers' verdicts, then
`training calibrate --from-records` (it reports ECE before and after on a held-out half).

    python -m benchmarks.records_calibration

Writes benchmarks/results/records_calibration.{json,md}.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import numpy as np

from benchmarks.common import write_result
from benchmarks.devdata import dev_data_root
from benchmarks.drift import processed
from engine import Predictor, default_model_dir
from engine.records import RecordStore
from engine.records.rows import answer_row
from imaging import ImageError
from training.data import CLASS_NAMES, list_split
from training.records_calibration import calibrate_from_records
from training.upload_simulation import simulate_upload

SITE = "contrast halved"


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="cxr-records-site-"))
    url = f"sqlite:///{scratch / 'records.sqlite3'}"
    store = RecordStore(url)
    store.migrate()
    predictor = Predictor.from_directory(default_model_dir(), gradcam_enabled=False)
    rng = np.random.default_rng(5)
    test = list_split(dev_data_root() / "chest_xray", "test")
    rows, verdicts = [], []
    for path, label in zip(test.paths, test.labels, strict=True):
        data = simulate_upload(processed(path.read_bytes(), SITE), rng)
        try:
            result = predictor.predict(data, heatmap=False)
        except ImageError:
            continue
        request_id = uuid.uuid4().hex
        rows.append(answer_row(result, request_id, "bench", predictor.bundle.version, data))
        verdicts.append((request_id, CLASS_NAMES[label]))
    store.write_answers(rows)
    for request_id, label in verdicts:
        store.add_verdict(request_id, label, "truth")
    store.dispose()
    _, held_out = calibrate_from_records(url, default_model_dir(), scratch / "site")
    result = {"site": f"dev-test films, {SITE}, as simulated uploads", "records": len(rows),
              "held_out": held_out}  # fmt: skip
    md = [
        f"{result['site']}: {len(rows)} recorded answers with verdicts; calibration fitted on "
        f"{held_out['fitted_on']}, judged on the other {held_out['judged']}: ECE (10 bins) "
        f"{held_out['ece_10_bins_before']:.4f} before, {held_out['ece_10_bins_after']:.4f} after.",
        "",
    ]
    write_result("records_calibration", result, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
