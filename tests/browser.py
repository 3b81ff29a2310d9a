"""Pages as a reader sees them, in headless Chromium: tables that fit their column (or scroll in their own box with
the row names kept in view), figures drawn, no markdown left raw. The page is measured by tests/measure.js, injected
before </body> and read back with --dump-dom."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

MEASURE = Path(__file__).with_name("measure.js").read_text()
RAW = (  # what markdown looks like when it was not rendered
    (r"\*\*[^*\s][^*\n]*\*\*", "bold markers"),
    (r"\]\([^)\s]+\)", "a link"),
    (r"^\s*\|.*\|\s*$", "a table row"),
    (r"\w[:;,] - \S.*\s- \S", "a list run into its sentence"),
)


def chromium() -> str:
    """The browser, or a skip (a failure in CI, where .ci/run installs it: DELBIND_CI=1)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("DELBIND_CI"):
            pytest.fail("chromium is missing: .ci/run installs it (apt-get install chromium fonts-dejavu-core)")
        pytest.skip("chromium is not installed (apt-get install -y chromium fonts-dejavu-core)")
    return found


def seen(page: Path, profile: Path, width: int = 1400) -> dict[str, Any]:
    """``page`` loaded at ``width`` px: its content column's width, each table's width and whether it scrolls with a
    sticky first column, each image's drawn size, and the prose text."""
    measured = page.with_name(f"_measured_{page.name}")  # beside the page: its relative CSS and images resolve
    measured.write_text(page.read_text(encoding="utf-8").replace("</body>", f"<script>{MEASURE}</script></body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             f"--user-data-dir={profile}", f"--window-size={width},900", "--virtual-time-budget=5000"]  # fmt: skip
    try:
        proc = subprocess.run([chromium(), *flags, "--dump-dom", measured.as_uri()], capture_output=True, text=True,
                              timeout=120)  # fmt: skip
    finally:
        measured.unlink()
    found = re.search(r'<pre id="delbind-measure">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"{page}: nothing measured ({proc.stderr[-1000:]})"
    return json.loads(html.unescape(found.group(1)))


def problems(view: dict[str, Any]) -> list[str]:
    """What a reader would trip over on the measured page ([] when none)."""
    out = []
    for t in view["tables"]:
        if t["width"] > view["column"] + 1 and not (t["scrolls"] and t["sticky"] == "sticky"):
            out.append(f"table {t['head']!r}: {t['width']:.0f} px in a {view['column']:.0f} px column, and it does "
                       "not scroll in its own box with its first column in view")  # fmt: skip
    out += [f"image {i['src']!r} is not drawn" for i in view["images"] if not (i["natural"] and i["shown"])]
    for pattern, what in RAW:
        if match := re.search(pattern, view["text"], re.M):
            out.append(f"raw markdown ({what}): {match.group(0)[:80]!r}")
    return out
