"""The website as a reader sees it: headless Chromium (Debian's ``chromium``, driven by Playwright) opens every
page of the table of contents over a local HTTP server.

Checks: the page title, at least one rendered figure on every chapter and on the landing page, that every internal
link resolves, that each chapter's Colab button points at the chapter's ``.ipynb``, and a screenshot of the
landing page in ``_build/screenshots/``. ``make test`` installs the browser; without it this test *fails*, unless
``LABCLIP_SKIP_BROWSER=1`` opts out explicitly.
"""

from __future__ import annotations

import os
import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.built_site
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    if os.environ.get("LABCLIP_SKIP_BROWSER") == "1":
        pytest.skip("LABCLIP_SKIP_BROWSER=1: the real-browser test was opted out")
    path = os.environ.get("LABCLIP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("no chromium found: `make test` installs Debian's chromium (or set LABCLIP_CHROMIUM, or opt out "
                    "with LABCLIP_SKIP_BROWSER=1)")
    return path


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    assert (HTML / "index.html").is_file(), "run `make book` first"
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(HTML)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def _open(browser, url: str):
    """A page with every non-local request aborted (the build machine has no network; CDNs would only time out)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    local = urlsplit(url).netloc
    page.route("**/*", lambda route: route.continue_() if urlsplit(route.request.url).netloc == local
               else route.abort())
    response = page.goto(url, wait_until="load", timeout=60_000)
    assert response is not None and response.ok, f"{url}: HTTP {response.status if response else 'no response'}"
    return page


def test_every_page_in_a_real_browser(book_tool, site, browser):
    chapters = set(book_tool.toc_notebooks())
    checked_links: dict[str, bool] = {}
    for doc in book_tool.toc_files():
        url = urljoin(site, f"{doc}.html")
        page = _open(browser, url)
        heading = page.locator("article h1").first.inner_text().strip().rstrip("#").strip()
        title = page.title()
        assert heading and heading in title and title.endswith("LabCLIP Book"), f"{doc}: title {title!r}"

        if doc in chapters or doc == "book/intro":
            rendered = page.evaluate("""() => Array.from(document.querySelectorAll('article img'))
                .filter(i => i.src.includes('/_images/') && i.complete && i.naturalWidth > 0).length""")
            assert rendered >= 1, f"{doc}: no rendered figure"

        if doc in chapters:
            colab = page.evaluate("""() => Array.from(document.querySelectorAll('a[href*="colab.research.google.com"]'))
                .map(a => a.href)""")
            assert colab, f"{doc}: no Colab launch button"
            assert all(h.endswith(f"{doc}.ipynb") for h in colab), f"{doc}: Colab links {colab}"

        hrefs = page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        ids = set(page.evaluate("() => Array.from(document.querySelectorAll('[id]')).map(e => e.id)"))
        for href in hrefs:
            target, fragment = urldefrag(href)
            if urlsplit(target).netloc != urlsplit(site).netloc:
                continue  # external (GitHub, Colab, arXiv): not reachable from the build machine
            if target == url and fragment:
                assert fragment in ids, f"{doc}: link to missing anchor #{fragment}"
            if target not in checked_links:
                checked_links[target] = browser_request_ok(page, target)
            assert checked_links[target], f"{doc}: internal link {href} does not resolve"

        if doc == "book/intro":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "landing.png"), full_page=True)
        page.close()
    assert (SCREENSHOTS / "landing.png").stat().st_size > 10_000, "the landing page screenshot is empty"
    assert len(checked_links) > 20, "suspiciously few internal links were followed"


def browser_request_ok(page, url: str) -> bool:
    """Fetch ``url`` through the browser's own network stack (same server, same cookies)."""
    return page.request.get(url).ok
