"""Logging for the service: plain text for a terminal (the default), or LOG_FORMAT=json for a log
pipeline, one JSON object per line (python-json-logger), uvicorn's own lines included.

Request lines carry their fields as `extra` attributes: plain text puts them in the message, JSON
gives each its own key. No line ever carries image bytes or DICOM header values.
"""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MARK = "_cxr_handler"


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Install one handler on the root logger (replacing the one installed before, if any)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler()
    setattr(handler, _MARK, True)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                datefmt="%Y-%m-%dT%H:%M:%S%z",
            )
        )
        # uvicorn configured its own text handlers before importing the app: route them here.
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).handlers = []
            logging.getLogger(name).propagate = True
    else:
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
