"""Admission by expected waiting time: a burst the replica clears within MAX_QUEUE_WAIT_MS is
queued and answered, a flood beyond it is refused at once with Retry-After, and the count cap
still holds. Driven through the ASGI middleware with a stand-in app whose work is held by events,
so no assertion depends on this machine's speed."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from app.metrics import Recorder
from app.middleware import LoadShedMiddleware, WaitEstimate, available_cores
from tests.app.conftest import make_client


def test_the_estimate_spreads_queued_work_over_the_cores():
    estimate = WaitEstimate(cores=2)
    assert estimate.seconds(50) == 0.0  # nothing measured yet: no refusal for waiting
    estimate.record(0.1, sharing=1)  # alone: all of its wall time was work
    assert estimate.seconds(4) == 4 * 0.1 / 2
    estimate.record(0.4, sharing=8)  # 8 sharing 2 cores: a quarter of a core each
    assert abs(estimate.mean_work_seconds - 0.1) < 1e-12  # 0.4 s x 2/8 = the same 0.1 s of work


class HeldApp:
    """A prediction endpoint that finishes when the test says so."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def run(coro):
    return asyncio.run(coro)


def shed_app(held: HeldApp, **kwargs) -> LoadShedMiddleware:
    return LoadShedMiddleware(held, recorder=Recorder(enabled=False), drain_limit=1 << 20, **kwargs)


async def post_all(app, count: int, held: HeldApp):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        tasks = [asyncio.create_task(client.post("/predict", content=b"x")) for _ in range(count)]
        await asyncio.sleep(0.05)
        held.release.set()
        return await asyncio.gather(*tasks)


def test_a_burst_within_the_budget_is_queued_and_answered():
    async def scenario():
        held = HeldApp()
        app = shed_app(held, max_inflight=64, max_queue_wait_seconds=1.0, cores=2)
        app.wait.record(0.03, sharing=1)  # a recent prediction took 30 ms of work
        return await post_all(app, 16, held)  # 16 x 30 ms / 2 cores = 240 ms < 1 s

    answers = run(scenario())
    assert [a.status_code for a in answers] == [200] * 16


def test_a_flood_beyond_the_budget_is_refused_at_once_with_retry_after():
    async def scenario():
        held = HeldApp()
        app = shed_app(held, max_inflight=64, max_queue_wait_seconds=0.1, cores=2)
        app.wait.record(0.05, sharing=1)  # 50 ms of work each: 4 waiting fill 100 ms on 2 cores
        return await post_all(app, 10, held)

    answers = run(scenario())
    codes = [a.status_code for a in answers]
    assert codes.count(200) == 5  # 0..4 in progress ahead: expected wait <= 100 ms
    refused = [a for a in answers if a.status_code == 503]
    assert len(refused) == 5
    assert all("expected wait" in a.json()["detail"] for a in refused)
    assert all(int(a.headers["retry-after"]) >= 1 for a in refused)


def test_the_count_cap_holds_whatever_the_estimate():
    async def scenario():
        held = HeldApp()
        app = shed_app(held, max_inflight=3, max_queue_wait_seconds=60.0, cores=2)
        return await post_all(app, 5, held)

    codes = [a.status_code for a in run(scenario())]
    assert codes.count(200) == 3 and codes.count(503) == 2


def test_other_paths_are_never_refused():
    async def scenario():
        held = HeldApp()
        held.release.set()
        app = shed_app(held, max_inflight=1, max_queue_wait_seconds=0.001, cores=1)
        app.in_progress = 5
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            return await client.get("/health"), await client.post("/predict", content=b"x")

    health, predict = run(scenario())
    assert health.status_code == 200 and predict.status_code == 503


def test_no_more_predictions_run_at_once_than_there_are_cores(shipped_bundle_dir, synthetic_xray):
    """Admitted requests beyond the core count wait their turn instead of sharing the cores."""
    running, most = 0, 0
    lock = threading.Lock()
    with make_client(model_dir=shipped_bundle_dir) as client:
        predictor = client.app.state.service.predictor
        real = predictor.predict

        def counted(data, heatmap=True):
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            try:
                time.sleep(0.1)
                return real(data, heatmap)
            finally:
                with lock:
                    running -= 1

        predictor.predict = counted
        with ThreadPoolExecutor(6) as pool:
            answers = list(
                pool.map(
                    lambda _: client.post(
                        "/predict?heatmap=false",
                        files={"file": ("x.png", synthetic_xray, "image/png")},
                    ),
                    range(6),
                )
            )
    assert [a.status_code for a in answers] == [200] * 6
    assert most == min(6, available_cores())
