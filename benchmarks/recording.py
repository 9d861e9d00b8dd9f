"""What keeping a record of every answer costs, and what a database outage does to it.

    python -m benchmarks.recording [--rounds 6] [--seconds 3]

One PostgreSQL (Debian's, on loopback) and two servers of the shipped model: recording on
(DATABASE_URL = that PostgreSQL) and off (RECORD_ANSWERS=off), measured in alternating rounds:
p50 of one client without heatmap, and answers per second of 16 clients. Then the outage: 16
clients for 90 s against the recording server while PostgreSQL is stopped from second 15 to
second 75; afterwards every answer must be in the database exactly once (the request id is the
key) and nothing must have failed. Writes benchmarks/results/recording.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time

from benchmarks.common import machine, processor_line, write_result
from benchmarks.http_load import bench_upload, load
from benchmarks.postgres import LocalPostgres
from benchmarks.server import start_uvicorn, stop_server
from engine.records import RecordStore

OUTAGE = (15.0, 75.0, 90.0)  # stop at, start at, load for (seconds)


def database_count(url: str) -> int:
    store = RecordStore(url)
    try:
        return store.count()
    finally:
        store.dispose()


def settled_count(url: str, quiet: float = 3.0, timeout: float = 60.0) -> int:
    """The record count once it has not changed for `quiet` seconds (queued batches written)."""
    deadline = time.monotonic() + timeout
    count, since = database_count(url), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet:
        time.sleep(0.5)
        now = database_count(url)
        if now != count:
            count, since = now, time.monotonic()
    return count


def wait_for_records(url: str, expected: int, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    count = database_count(url)
    while count < expected and time.monotonic() < deadline:
        time.sleep(1.0)
        count = database_count(url)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrent-seconds", type=float, default=10.0)
    args = parser.parse_args()
    upload, described = bench_upload()
    result: dict = {"machine": machine(), "upload": described}
    with LocalPostgres() as postgres:
        spool = tempfile.mkdtemp(prefix="cxr-bench-spool-")
        servers = {
            "on": start_uvicorn({"DATABASE_URL": postgres.url, "RECORDS_SPOOL_DIR": spool}),
            "off": start_uvicorn({"RECORD_ANSWERS": "false"}),
        }
        try:
            single = {"on": [], "off": []}
            concurrent = {"on": [], "off": []}
            for r in range(args.rounds):
                order = ("on", "off") if r % 2 == 0 else ("off", "on")
                for mode in order:
                    base = servers[mode][1]
                    phase = asyncio.run(load(base, upload, False, 1, args.seconds, 10_000))
                    single[mode].append(phase["median_ms"])
                if r < 4:
                    for mode in order:
                        base = servers[mode][1]
                        phase = asyncio.run(
                            load(base, upload, False, 16, args.concurrent_seconds, 100_000)
                        )
                        concurrent[mode].append(
                            {"per_s": phase["requests_per_s"], "statuses": phase["statuses"]}
                        )
                print(f"round {r + 1}/{args.rounds}", flush=True)
            result["p50_ms"] = {m: statistics.median(v) for m, v in single.items()}
            result["p50_ratio_on_off"] = result["p50_ms"]["on"] / result["p50_ms"]["off"]
            result["concurrent_per_s"] = {
                m: statistics.median(x["per_s"] for x in v) for m, v in concurrent.items()
            }
            result["concurrent_ratio_on_off"] = (
                result["concurrent_per_s"]["on"] / result["concurrent_per_s"]["off"]
            )
            result["concurrent_statuses"] = concurrent
            before = settled_count(postgres.url)
            stop, start, length = OUTAGE
            timers = [
                threading.Timer(stop, postgres.stop),
                threading.Timer(start, postgres.start),
            ]
            for timer in timers:
                timer.start()
            phase = asyncio.run(load(servers["on"][1], upload, False, 16, length, 1_000_000))
            for timer in timers:
                timer.join()
            answered = sum(phase["statuses"].values())
            wait_for_records(postgres.url, before + answered)
            after = settled_count(postgres.url)
            result["outage"] = {
                "database_stopped_from_s": stop,
                "database_started_at_s": start,
                "load_seconds": length,
                "concurrency": 16,
                "statuses": phase["statuses"],
                "transport_errors": phase["transport_errors"],
                "answers": answered,
                "records_written": after - before,
                "lost": answered - (after - before),
            }
        finally:
            for proc, _, _ in servers.values():
                stop_server(proc)
    p50, per_s, outage = result["p50_ms"], result["concurrent_per_s"], result["outage"]
    md = [
        f"Recording on (PostgreSQL on loopback) against off, alternating rounds, one server each, "
        f"{described}, no heatmap. {processor_line(result['machine'])}.",
        "",
        "| | recording on | off | on / off |",
        "| --- | --- | --- | --- |",
        f"| p50 /predict, one client (ms) | {p50['on']:.1f} | {p50['off']:.1f} | "
        f"{result['p50_ratio_on_off']:.3f} |",
        f"| answers per second, 16 clients | {per_s['on']:.1f} | {per_s['off']:.1f} | "
        f"{result['concurrent_ratio_on_off']:.3f} |",
        "",
        f"Outage: 16 clients for {outage['load_seconds']:.0f} s, PostgreSQL stopped from second "
        f"{outage['database_stopped_from_s']:.0f} to {outage['database_started_at_s']:.0f}: "
        f"statuses {outage['statuses']}, transport errors {outage['transport_errors']}; "
        f"{outage['answers']} answers, {outage['records_written']} records written afterwards "
        f"(the request id is the key, so none twice), {outage['lost']} missing.",
        "",
    ]
    write_result("recording", result, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
