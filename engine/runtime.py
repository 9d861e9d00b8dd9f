"""TensorFlow, imported quietly and bounded: only the engine and training import it.

TensorFlow prints start-up notices (oneDNN, cpu_feature_guard) to the process's stderr from C++
before any logging is configured, and TF_CPP_MIN_LOG_LEVEL no longer silences all of them. The
import therefore runs with file descriptor 2 captured; afterwards every captured line goes back
to stderr except absl INFO/WARNING lines, so real errors still show.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from types import ModuleType

# absl's "I1201 12:00:00.000 ..." / "W..." prefixes, its pre-initialisation banner, and the
# continuation line of the cpu_feature_guard notice.
_CHATTER = re.compile(
    r"^([IW]\d{4} |WARNING: All log messages before absl::InitializeLog|To enable the following "
    r"instructions)"
)
_import_lock = threading.Lock()
# Keras 3 imports scikit-learn, pandas and matplotlib whenever they are installed, for wrappers
# and data adapters no prediction uses. The development environment has them (training needs
# them): in a serving process they cost about 140 MiB of RSS and a second of start-up (measured:
# 786 against 642 MiB for a loaded predictor). The image does not install them.
KERAS_EXTRAS = ("sklearn", "pandas", "matplotlib")
SERVING_ENV = "CXR_SERVING_PROCESS"


def mark_serving_process() -> None:
    """For the serving entry points, before anything imports Keras; the variable reaches
    uvicorn's worker processes too. Keras then finds its optional extras absent."""
    os.environ[SERVING_ENV] = "1"


def _hide_keras_extras() -> None:
    if os.environ.get(SERVING_ENV) == "1":
        for name in KERAS_EXTRAS:
            sys.modules.setdefault(name, None)  # `import name` now raises ImportError


def quiet_tensorflow_startup() -> None:
    """C++ INFO and WARNING off (a user who sets TF_CPP_MIN_LOG_LEVEL keeps their choice)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def stderr_without_chatter() -> Iterator[None]:
    """Capture file descriptor 2 meanwhile; afterwards replay it without absl INFO/WARNING."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines(keepends=True):
                if not _CHATTER.match(line):
                    sys.stderr.write(line)
            sys.stderr.flush()


def import_tensorflow() -> ModuleType:
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    quiet_tensorflow_startup()
    _hide_keras_extras()
    with _import_lock, stderr_without_chatter():
        import tensorflow
    return tensorflow


def import_keras() -> ModuleType:
    import_tensorflow()
    import keras

    return keras


def configure_tensorflow(threads: int) -> None:
    """Bound TensorFlow's thread pools; must run before TensorFlow executes anything."""
    tf = import_tensorflow()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # already initialised (e.g. several apps in one test process)
        pass
