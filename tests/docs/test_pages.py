"""The documentation: every figure on the model and performance pages comes from a results file,
every included file exists, the README is one screen and its links resolve, and the site builds
with --strict."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SNIPPET = re.compile(r'^--8<-- "([^":]+)(?::[^"]*)?"\s*$')
FIGURE = re.compile(r"\d+\.\d+|\d+(?:\.\d+)?\s?%|\b\d{2,}\s?(?:ms|s|MB|MiB|GB|req/s|films)\b")
FIGURE_PAGES = ["model/index.md", "performance.md"]
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def snippet_paths(page: Path) -> list[str]:
    return [m.group(1) for line in page.read_text().splitlines() if (m := SNIPPET.match(line))]


def prose_lines(page: Path) -> list[str]:
    """The page's own words: everything but the lines that include a results file."""
    return [line for line in page.read_text().splitlines() if not SNIPPET.match(line)]


@pytest.mark.parametrize("page", sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")))
def test_every_included_file_exists(page):
    missing = [path for path in snippet_paths(DOCS / page) if not (ROOT / path).is_file()]
    assert not missing, f"{page} includes files that do not exist: {missing}"


@pytest.mark.parametrize("page", FIGURE_PAGES)
def test_figure_pages_type_no_figure_by_hand(page):
    typed = [line for line in prose_lines(DOCS / page) if FIGURE.search(line)]
    assert not typed, f"{page} types figures by hand instead of including a results file: {typed}"
    assert snippet_paths(DOCS / page), f"{page} includes no results file"


def test_the_figure_check_catches_a_typed_figure():
    assert FIGURE.search("accuracy 0.959 on the test split")
    assert FIGURE.search("p50 12 ms")
    assert FIGURE.search("15.3% of the maps")
    assert not FIGURE.search("a 2-core machine, Platt scaling, 7 blocks")


def test_readme_is_one_screen_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    broken = []
    for target in MARKDOWN_LINK.findall(readme):
        if target.startswith(("http://", "https://", "#")):
            continue
        if not (ROOT / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"README links to files that do not exist: {broken}"


def test_readme_uses_no_internal_vocabulary():
    readme = (ROOT / "README.md").read_text().lower()
    for phrase in ("floor", "first-round", "issue ", "../shared"):
        assert phrase not in readme, phrase


@pytest.mark.skipif(
    shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None,
    reason="mkdocs is not installed in this environment (the dev extra has it)",
)
def test_site_builds_strict_without_warnings(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    result = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING" not in result.stderr, result.stderr[-3000:]
    assert (tmp_path / "site" / "model" / "roc_curve.png").is_file()
    model_page = (tmp_path / "site" / "model" / "index.html").read_text()
    assert "name and version" in model_page  # the card's facts were rendered by the hook
    node_page = (tmp_path / "site" / "dicom-node" / "index.html").read_text()
    for name in Settings.model_fields:
        if name.startswith("dicom_"):
            assert f"<code>{name.upper()}</code>" in node_page  # the hook's settings table
