"""The report in a real browser (headless Chromium): no element wider than the page, figures at the size drawn.

Skips only where Chromium or its driver is not installed (``apt-get install chromium chromium-driver``; .ci/run
installs them). Selenium comes with the ``test`` extra.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_report import write_paper_project

from ms2img.report import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="Chromium is not installed (apt-get install -y chromium chromium-driver): no browser to open the report in",
)

# every element's box, except those inside a scrolling card (a figure wider than the page scrolls there)
WIDER_THAN_PAGE = """
const page = document.documentElement.clientWidth;
const bad = [];
for (const el of document.querySelectorAll('body *')) {
  let clipped = false;
  for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
    if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) { clipped = true; break; }
  }
  const r = el.getBoundingClientRect();
  if (clipped || r.width === 0) continue;
  if (r.left < -1 || r.right > page + 1) {
    bad.push(`${el.tagName.toLowerCase()}.${el.className} ${Math.round(r.left)}..${Math.round(r.right)}`);
  }
}
return {page: page, scroll: document.documentElement.scrollWidth, bad: bad.slice(0, 10)};
"""
# every figure shown at its drawn width (width attribute = inches x 96), none squeezed
SQUEEZED = """
return Array.from(document.querySelectorAll('figure img')).filter(
  img => Math.abs(img.getBoundingClientRect().width - Number(img.getAttribute('width'))) > 1
).map(img => img.alt);
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium with nothing that reaches out (no sync, no component updates, a fresh profile)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="ms2img-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = write_paper_project(tmp_path_factory.mktemp("project"), drift=True)
    return build_report(root, "report/index.html").path


@pytest.mark.parametrize("width", [1280, 800])
def test_no_element_is_wider_than_the_page(browser, report, width):
    browser.set_window_size(width, 900)
    browser.get(report.as_uri())
    browser.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    found = browser.execute_script(WIDER_THAN_PAGE)
    assert found["bad"] == [], found
    assert found["scroll"] <= found["page"], found  # no sideways scrolling of the page itself
    assert browser.execute_script(SQUEEZED) == []
    # the drivers figure (12.5 in = 1,200 CSS px) is wider than these pages: it scrolls inside its card
    scrolls = browser.execute_script(
        "const s = [...document.querySelectorAll('#drivers figure .scroll')];"
        "return s.map(e => e.scrollWidth > e.clientWidth);"
    )
    assert scrolls == [True]
