"""`python -m app serve`: uvicorn with the settings this service is measured with, and its
listening socket bound as TCP.

Why not `uvicorn --workers N`: uvicorn (0.54) binds the shared socket of its multiprocess mode
with protocol 0, accepted connections inherit it, and asyncio then leaves Nagle's algorithm on
(it sets TCP_NODELAY only when the socket says IPPROTO_TCP). Every keep-alive request then waits
on the client's delayed ACK: a steady ~45 ms floor with two workers (measured here; uvicorn issue
#3149). Binding the socket ourselves with IPPROTO_TCP removes it. One worker is unaffected.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile

import uvicorn
from uvicorn.supervisors import Multiprocess

from engine.runtime import mark_serving_process

# prometheus-client's variable (not imported from app.metrics: importing the metrics here would
# make the supervisor process a writer of samples too).
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


# Longer than clients' and proxies' own idle expiry (httpx 5 s, nginx upstream 60 s), so a client
# never sends a request on a connection the server is just closing.
KEEP_ALIVE_SECONDS = 75
GRACEFUL_SHUTDOWN_SECONDS = 20


def tcp_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def serve(host: str, port: int, workers: int = 1, access_log: bool = False) -> None:
    mark_serving_process()
    if workers > 1 and not os.environ.get(MULTIPROCESS_ENV):
        # Every worker writes its metrics here; /metrics adds them up (app/metrics.py).
        os.environ[MULTIPROCESS_ENV] = tempfile.mkdtemp(prefix="cxr-metrics-")
    config = uvicorn.Config(
        "app.main:app",
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    sock = tcp_socket(host, port)
    shown = f"[{host}]" if ":" in host else host
    address = f"http://{shown}:{sock.getsockname()[1]}"
    os.environ.setdefault("PUBLIC_URL", address)  # the workers' settings show it when ready
    logging.getLogger("uvicorn.error").info(
        "serving on %s with %d worker(s): the page at /, the API docs at /docs", address, workers
    )
    if workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])
