"""The manual as a reader sees it at 1400 px in headless Chromium (tests/browser.py): every table fits its column or
scrolls in its own box with the row names kept in view, every figure is drawn, no markdown is left raw."""

import os
import subprocess
import sys

import pytest

from tests.browser import chromium, problems, seen
from tests.helpers import ROOT

PAGES = ["index", "course", "results", "evaluation", "defaults", "performance", "scoring", "configuration"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    chromium()  # skips (or fails in CI) before building anything
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True)  # fmt: skip
    if "No module named mkdocs" in proc.stderr and not os.environ.get("DELBIND_CI"):
        pytest.skip("the docs extra is not installed (make docs-build installs it)")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_a_manual_page_reads_on_a_laptop_screen(site, page, tmp_path):
    view = seen(site / "index.html" if page == "index" else site / page / "index.html", tmp_path / "profile")
    assert view["text"].strip() and view["column"] > 500
    assert problems(view) == []
