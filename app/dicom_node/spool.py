"""The node's spool on disk: films wait in `inbox/` until analysed, results in `outbox/` until the
destination has them, results the destination refused for good in `failed/`.

Every file is written to `tmp/`, flushed and renamed into place, so a crash leaves a whole file or
none. Results are removed from the outbox only after the destination confirmed them; a film is
removed from the inbox only after its results are in the outbox. A crash in between repeats the
step, and because a result's UIDs derive from its source film, a repeat is the same object again.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import uuid
from pathlib import Path

from pydicom import Dataset

_UID = re.compile(r"[0-9.]{1,64}")


def file_name(uid: object) -> str:
    """A UID as a file name; anything that is not a well-formed UID (a sender controls it, and
    "../x" must not leave the spool) is named by its hash instead."""
    text = str(uid)
    if _UID.fullmatch(text):
        return f"{text}.dcm"
    return f"x{hashlib.sha256(text.encode()).hexdigest()[:40]}.dcm"


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.inbox = self.root / "inbox"
        self.outbox = self.root / "outbox"
        self.failed = self.root / "failed"
        self.tmp = self.root / "tmp"
        for folder in (self.inbox, self.outbox, self.failed, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
        for leftover in self.tmp.iterdir():  # half-written by a process that died
            leftover.unlink(missing_ok=True)

    def _write(self, folder: Path, name: str, data: bytes) -> Path:
        staging = self.tmp / f"{uuid.uuid4().hex}.part"
        with open(staging, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        target = folder / name
        os.replace(staging, target)
        return target

    def put_film(self, sop_instance_uid: str, data: bytes) -> Path:
        """A received film, named by its SOP Instance UID (the same film twice is kept once)."""
        return self._write(self.inbox, file_name(sop_instance_uid), data)

    def put_result(self, dataset: Dataset) -> Path:
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        return self._write(self.outbox, file_name(dataset.SOPInstanceUID), buffer.getvalue())

    def fail(self, result: Path) -> Path:
        """Keep a result the destination refused for good, out of the retry loop."""
        target = self.failed / result.name
        os.replace(result, target)
        return target

    @staticmethod
    def _oldest_first(folder: Path) -> list[Path]:
        files = []
        for path in folder.glob("*.dcm"):
            try:
                files.append((path.stat().st_mtime, path))
            except FileNotFoundError:  # taken by another thread meanwhile
                continue
        return [path for _, path in sorted(files)]

    def films(self) -> list[Path]:
        return self._oldest_first(self.inbox)

    def results(self) -> list[Path]:
        return self._oldest_first(self.outbox)
