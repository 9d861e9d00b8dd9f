"""The web page at / in a real browser: Debian's Chromium driven by Playwright, against a real
uvicorn serving a bundle trained on synthetic films (so its guard accepts them). The page's
Content-Security-Policy stays on, so the tests wait on selectors, never on evaluated strings."""

from __future__ import annotations

import shutil
from urllib.parse import urlparse

import httpx
import pytest

from benchmarks.nonxray import not_chest_xrays
from benchmarks.server import start_uvicorn
from tests.conftest import REPO
from tests.dicom_files import grayscale_dicom
from tests.images import jpeg_bytes, synthetic_film

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="needs Chromium (Debian package 'chromium'; .ci/run installs it when missing)",
    ),
]
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = REPO / "docs" / "web-page.png"  # the README's, from a real film (devdata check)


@pytest.fixture(scope="module")
def service(synthetic_bundle):
    proc, base, _ = start_uvicorn({"MODEL_DIR": str(synthetic_bundle)})
    yield base
    proc.terminate()
    proc.wait(30)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, service):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    tab = context.new_page()
    tab.requests = []  # every request the page makes, to check none leaves the origin
    tab.on("request", lambda request: tab.requests.append(request.url))
    tab.goto(service + "/")
    yield tab
    context.close()


def upload(page, tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    page.set_input_files("#file", str(path))


def canvas_pixels(page) -> list[int]:
    return page.evaluate(
        "() => { const c = document.getElementById('view');"
        " return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }"
    )


def test_a_film_gets_the_apis_answer_and_a_heatmap_the_slider_controls(page, service, tmp_path):
    film = jpeg_bytes(synthetic_film(77, 900, 760, pneumonia=True))
    api = httpx.post(f"{service}/predict", files={"file": ("film.jpg", film)}).json()
    upload(page, tmp_path, "film.jpg", film)
    page.wait_for_selector("#answer:not([hidden])")
    assert page.text_content("#label") == api["label"]
    assert page.text_content("#probability") == f"{100 * api['probability']:.1f}%"
    assert page.text_content("#threshold") == f"{100 * api['threshold']:.1f}%"
    assert page.text_content("#version") == api["model_version"]
    assert page.text_content("#in-distribution").startswith("yes")
    heat = canvas_pixels(page)
    page.fill("#opacity", "0")
    page.dispatch_event("#opacity", "input")
    plain = canvas_pixels(page)
    assert len(heat) == len(plain)
    changed = sum(1 for a, b in zip(heat, plain, strict=True) if a != b)
    assert changed > len(plain) // 100, "the overlay is drawn and the slider takes it away"
    page.fill("#opacity", "100")
    page.dispatch_event("#opacity", "input")
    page.click("#toggle")  # compare with the plain film
    assert canvas_pixels(page) == plain
    assert page.get_attribute("#toggle", "aria-pressed") == "true"
    page.click("#toggle")
    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename == "film_heatmap.png"
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    origin = urlparse(service).netloc
    assert all(urlparse(u).netloc in (origin, "") for u in page.requests if "://" in u)


def test_errors_are_shown_in_words(page, tmp_path):
    upload(page, tmp_path, "notes.jpg", b"patient notes, not a picture\n" * 10)
    page.wait_for_selector("#error:not([hidden])")
    assert "not a supported image" in page.text_content("#error")
    upload(page, tmp_path, "cat.png", not_chest_xrays()["skimage chelsea"][1])
    page.wait_for_selector("#error:has-text('Not a chest X-ray')")
    assert page.text_content("#error").startswith("Not a chest X-ray:")
    assert page.is_hidden("#answer")


def test_several_files_in_a_row_including_dicom(page, tmp_path):
    for i, (name, data) in enumerate(
        [
            ("a.jpg", jpeg_bytes(synthetic_film(5, 700, 600))),
            ("b.dcm", grayscale_dicom(synthetic_film(6, 800, 700), bits_stored=12)),
        ]
    ):
        upload(page, tmp_path, name, data)
        page.wait_for_selector(f"#image:has-text('{['JPEG', 'DICOM'][i]},')")
    assert "DX PA" in page.text_content("#image")
    assert not page.is_disabled("#opacity")  # the DICOM film came back to draw on


def test_network_failure_and_busy_server_are_explained(page, tmp_path):
    film = jpeg_bytes(synthetic_film(8))
    page.route("**/predict", lambda route: route.abort())
    upload(page, tmp_path, "x.jpg", film)
    page.wait_for_selector("#error:not([hidden])")
    assert "could not be reached" in page.text_content("#error")
    page.unroute("**/predict")
    page.route(
        "**/predict",
        lambda route: route.fulfill(
            status=503,
            headers={"Retry-After": "1", "Content-Type": "application/json"},
            body='{"detail": "the service is busy (8 predictions in progress); retry in a moment"}',
        ),
    )
    upload(page, tmp_path, "y.jpg", film)
    page.wait_for_selector("#error:has-text('busy')")
    assert "try again in 1 s" in page.text_content("#error")


def test_accessible_and_fits_a_phone(browser, service, tmp_path):
    context = browser.new_context(viewport={"width": 375, "height": 800})
    tab = context.new_page()
    tab.goto(service + "/")
    unlabelled = tab.evaluate(
        "() => Array.from(document.querySelectorAll('input, button')).filter(e =>"
        " !(e.labels && e.labels.length) && !e.textContent.trim()).map(e => e.id)"
    )
    assert unlabelled == []
    assert tab.get_attribute("#result", "aria-live") == "polite"
    assert "not a medical device" in tab.text_content("#intended-use")
    assert tab.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
    tab.keyboard.press("Tab")
    assert tab.evaluate("document.activeElement.id") == "file"  # the first stop is the file input
    upload(tab, tmp_path, "m.jpg", jpeg_bytes(synthetic_film(9, 640, 520)))
    tab.wait_for_selector("#answer:not([hidden])")
    tab.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    context.close()


@pytest.mark.devdata
def test_screenshot_of_a_real_film_for_the_readme(browser, shipped_bundle_dir, sample_files):
    """The shipped model on a real sample film, as the README shows it."""
    proc, base, _ = start_uvicorn({"MODEL_DIR": str(shipped_bundle_dir)})
    try:
        context = browser.new_context(viewport={"width": 1100, "height": 760})
        tab = context.new_page()
        tab.goto(base + "/")
        film = next(
            p for p in sample_files if p.name.startswith("pneumonia") and p.suffix == ".jpg"
        )
        tab.set_input_files("#file", str(film))
        tab.wait_for_selector("#answer:not([hidden])")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        tab.screenshot(path=str(SCREENSHOT), full_page=True)
        context.close()
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_reader_agrees_or_disagrees_under_the_answer(page, service, tmp_path):
    upload(page, tmp_path, "film.jpg", jpeg_bytes(synthetic_film(78, 800, 700)))
    page.wait_for_selector("#answer:not([hidden])")
    label = page.text_content("#label")
    page.click("#disagree")
    page.wait_for_selector("#verdict-status:has-text('Recorded')")
    other = "NORMAL" if label == "PNEUMONIA" else "PNEUMONIA"
    assert other in page.text_content("#verdict-status")
    page.click("#agree")  # the same reader again: replaces the verdict
    page.wait_for_selector("#verdict-status:has-text('you agree')")
    report = httpx.get(f"{service}/monitoring", params={"window": 10}).json()
    assert report["rates"]["answers"] >= 1


def test_the_monitoring_page_draws_the_window(browser, service, tmp_path):
    for i in range(35):
        httpx.post(
            f"{service}/predict",
            params={"heatmap": "false"},
            files={"file": ("f.jpg", jpeg_bytes(synthetic_film(200 + i, 600, 500, i % 2 == 1)))},
        )
    context = browser.new_context(viewport={"width": 1100, "height": 1400})
    tab = context.new_page()
    tab.goto(service + "/monitoring/page")
    tab.wait_for_selector("#status:not(:has-text('Loading'))")
    status = tab.text_content("#status")
    assert "drift" in status.lower() or "not enough" in status.lower()
    tab.wait_for_selector("#histograms canvas")
    assert tab.locator("#histograms canvas").count() >= 3
    assert tab.locator("#signals tr").count() > 5
    tab.screenshot(path=str(tmp_path / "monitoring.png"), full_page=True)
    assert (tmp_path / "monitoring.png").stat().st_size > 10_000
    context.close()
