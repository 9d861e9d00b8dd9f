"""A serving process does not load Keras's optional extras; predictions are unchanged."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from engine.runtime import KERAS_EXTRAS, mark_serving_process
{mark}
from engine import Predictor
from tests.images import png_bytes, synthetic_film
predictor = Predictor.from_directory({bundle!r})
answer = predictor.predict(png_bytes(synthetic_film(0, pneumonia=True)))
loaded = [name for name in KERAS_EXTRAS if sys.modules.get(name) is not None]
print(repr(answer.probability), float(answer.heatmap.grid.sum()), ",".join(loaded), sep="|")
"""


def _run(bundle, mark: bool) -> list[str]:
    code = SCRIPT.format(mark="mark_serving_process()" if mark else "", bundle=str(bundle))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    ).stdout
    return out.strip().splitlines()[-1].split("|")


def test_serving_process_skips_keras_extras_with_the_same_answer(shipped_bundle_dir):
    served = _run(shipped_bundle_dir, mark=True)
    assert served[2:] == [""]  # none of scikit-learn, pandas, matplotlib
    plain = _run(shipped_bundle_dir, mark=False)
    assert plain[:2] == served[:2]  # the same probability and the same map
