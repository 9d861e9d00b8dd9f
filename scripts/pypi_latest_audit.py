"""A partial vulnerability check for machines where pip-audit cannot run.

pip-audit asks PyPI's per-version JSON API (or OSV); this project's build machines reach a PyPI
mirror that serves only per-project JSON, whose `vulnerabilities` field describes the latest
release. So: for every installed distribution at its latest release, report PyPI's known
vulnerabilities; list the others as not covered. Use `make audit` (pip-audit) wherever it works.

    .venv/bin/python scripts/pypi_latest_audit.py
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import sys
import urllib.request


def main() -> int:
    covered, vulnerable, not_covered = 0, [], []
    for dist in sorted(metadata.distributions(), key=lambda d: d.metadata["Name"].lower()):
        name, version = dist.metadata["Name"], dist.version
        try:
            with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=15) as r:
                project = json.load(r)
        except Exception as exc:  # not on PyPI (this project itself) or unreachable
            not_covered.append(f"{name} {version}: {type(exc).__name__}")
            continue
        latest = project["info"]["version"]
        if latest != version:
            not_covered.append(f"{name} {version}: latest is {latest}, no per-version data here")
            continue
        covered += 1
        for vuln in project.get("vulnerabilities") or []:
            vulnerable.append(f"{name} {version}: {vuln.get('id')} {vuln.get('aliases')}")
    print(
        f"{covered} distributions at their latest release checked; {len(vulnerable)} known "
        f"vulnerabilities"
    )
    for line in vulnerable:
        print(f"  VULNERABLE {line}")
    print(f"{len(not_covered)} not covered:")
    for line in not_covered:
        print(f"  {line}")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
