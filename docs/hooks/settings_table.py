"""MkDocs hook: `<!-- settings: PREFIX -->` on a page becomes the table of the settings whose
names start with PREFIX, from the one Settings object (names, defaults, descriptions), so a page
never retypes a default."""

from __future__ import annotations

import re

from app.settings import Settings

MARKER = re.compile(r"<!-- settings: (?P<prefix>[a-z_]+) -->")


def _default(field) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        return "empty" if value in ([], {}, "") else f"`{value}`"
    return "empty" if field.default in ("", None) else f"`{field.default}`"


def settings_table(prefix: str) -> str:
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        if name.startswith(prefix):
            rows.append(f"| `{name.upper()}` | {_default(field)} | {field.description} |")
    if len(rows) == 2:
        raise ValueError(f"no setting starts with {prefix!r}")
    return "\n".join(rows)


def on_page_markdown(markdown, page, config, files):
    return MARKER.sub(lambda match: settings_table(match["prefix"]), markdown)
