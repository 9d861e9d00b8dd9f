"""The previously shipped bundle, taken from git history, so `make bench` measures the old and
the new model in the same run on the same machine.

    python -m benchmarks.previous     (prints the folder it extracted)
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from benchmarks.common import REPO, RESULTS

# The commit that last shipped the previous model (the three-network ensemble 2026.12.02-792e732c,
# trained with the adults' films; before it, e0211b7 shipped the first-round 2026.11.22-9355f2ee).
PREVIOUS_COMMIT = "e544395"
PREVIOUS_DIR = RESULTS / "tmp" / f"previous-model-{PREVIOUS_COMMIT}"


def previous_bundle() -> Path | None:
    """The previous bundle's folder (extracted once), or None outside a git clone."""
    card = PREVIOUS_DIR / "models" / "default" / "model_card.json"
    if not card.is_file():
        try:
            archive = subprocess.run(
                ["git", "archive", "--format=tar", PREVIOUS_COMMIT, "models/default"],
                cwd=REPO,
                check=True,
                capture_output=True,
            ).stdout
        except (OSError, subprocess.CalledProcessError):
            return None
        PREVIOUS_DIR.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(PREVIOUS_DIR, filter="data")
    return card.parent


if __name__ == "__main__":
    print(previous_bundle())
