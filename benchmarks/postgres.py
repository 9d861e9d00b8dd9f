"""A throw-away PostgreSQL for the tests and benchmarks: Debian's server binaries, started in the
foreground on loopback in a temporary folder (never the system service), trust authentication,
no fsync. The tests skip (with the reason) where the server is not installed; `.ci/run`
installs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def server_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return found[-1].parent if found else None


def _as_postgres_user() -> list[str]:
    """postgres refuses to run as root: run it as the package's `postgres` user."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalPostgres:
    def __init__(self) -> None:
        bindir = server_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bindir = bindir
        # its own folder directly under /tmp: the postgres user cannot enter root's pytest dirs
        self.folder = Path(tempfile.mkdtemp(prefix="cxr-postgres-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        subprocess.run(
            [*_as_postgres_user(), str(bindir / "initdb"), "-D", str(self.data), "-A", "trust",
             "-U", "postgres", "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [*_as_postgres_user(), str(self.bindir / "postgres"), "-D", str(self.data),
             "-h", "127.0.0.1", "-p", str(self.port), "-k", str(self.folder), "-F"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("PostgreSQL did not start within 30 s")

    def stop(self) -> None:
        """A fast shutdown (clients cut off at once, as in an outage), then wait for the exit."""
        if self.process is not None:
            subprocess.run(
                [*_as_postgres_user(), str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data),
                 "-m", "fast", "-w"],
                capture_output=True,
            )  # fmt: skip
            self.process.wait(timeout=30)
            self.process = None

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
