"""GET /: the web page (one self-contained file: no CDN, no external font, no build step)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["web page"])

PAGE = Path(__file__).resolve().parent.parent / "web" / "index.html"
# The page may talk to this origin only; images come from the upload itself (blob:) or the answer
# (data:). Inline style and script are the page's own.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; connect-src 'self'; img-src 'self' blob: data:; "
    "style-src 'unsafe-inline'; script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


@lru_cache(maxsize=1)
def page() -> str:
    return PAGE.read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse, summary="The web page: drop a film, see the answer")
def index() -> HTMLResponse:
    """Upload a JPEG, PNG or DICOM film and see the label, the probability and the heatmap."""
    return HTMLResponse(
        page(),
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )
