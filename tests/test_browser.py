"""The website as a reader sees it: headless Chromium (Debian's ``chromium``, driven by Playwright) opens every
page of the table of contents over a local HTTP server.

Checks: the page title, at least one rendered figure on every chapter and on the landing page, that every internal
link resolves, that each chapter's Colab button points at the chapter's ``.ipynb``, that nothing overflows its
column sideways (code, outputs, tables), that no page shows a warning, a traceback or a progress bar's state, that
every formula is rendered by the site's own MathJax (no network), that every page's own assets load (no 404 of a
stylesheet, script or image), the instructor edition (assets, formulas, open solutions, in-page links), the
in-browser playground (its scores equal the chapter's Python), and screenshots of the landing page, chapters 3, 4
and 6, the playground and the instructor edition in ``_build/screenshots/``.
``make test`` installs the browser; without it this test *fails*, unless ``LABCLIP_SKIP_BROWSER=1`` opts out
explicitly.
"""

from __future__ import annotations

import os
import shutil
import threading
from contextlib import contextmanager
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


@contextmanager
def _serve(folder):
    """``folder`` over HTTP on 127.0.0.1 (a page's asset requests then get real statuses, 404 included)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()


@pytest.fixture(scope="module")
def site():
    assert (HTML / "index.html").is_file(), "run `make book` first"
    with _serve(HTML) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def _open(browser, url: str, width: int = 1280):
    """A page with every non-local request aborted (the build machine has no network; CDNs would only time out).
    Its own requests that fail (a stylesheet, a script, MathJax, an image: HTTP >= 400 or no answer) are listed in
    ``page.broken_assets``, which :func:`page_problems` reports."""
    page = browser.new_page(viewport={"width": width, "height": 900 if width > PHONE_WIDTH else 844})
    local = urlsplit(url).netloc
    page.route("**/*", lambda route: route.continue_() if urlsplit(route.request.url).netloc == local
               else route.abort())
    broken: list[str] = []
    page.on("response", lambda r: broken.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    page.on("requestfailed", lambda r: broken.append(f"failed {r.url}") if urlsplit(r.url).netloc == local
            else None)
    page.broken_assets = broken
    response = page.goto(url, wait_until="load", timeout=60_000)
    assert response is not None and response.ok, f"{url}: HTTP {response.status if response else 'no response'}"
    return page


#: A phone's width in CSS pixels (an iPhone 12 to 15).
PHONE_WIDTH = 390
#: Pages photographed on the phone too.
PHONE_SCREENSHOTS = {"book/intro": "landing-phone", "notebooks/06_labclip": "chapter-06-phone"}
SCREENSHOT_PAGES = {"book/intro": "landing", "notebooks/03_bag_of_words": "chapter-03",
                    "notebooks/04_probing": "chapter-04", "notebooks/06_labclip": "chapter-06"}
#: The words and numbers of table cells that the browser laid out on more than one line. Line breaks after a hyphen,
#: a dash or a slash are allowed (they are where typesetters break), so the pieces between them are measured.
BROKEN_WORDS_JS = """() => {
  const broken = [];
  for (const cell of document.querySelectorAll('article td, article th')) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const piece = /[^\\s\\-\u2010-\u2015\\/]+/g;
      for (let m = piece.exec(node.data); m; m = piece.exec(node.data)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const lines = new Set(Array.from(range.getClientRects()).filter(r => r.width > 0)
          .map(r => Math.round(r.top)));
        if (lines.size > 1) broken.push(m[0]);
      }
    }
  }
  return broken;
}"""
#: What a finished page must not show.
FORBIDDEN = {"a warning": r"\bWARNING\b", "a traceback": r"Traceback \(most recent call last\)",
             "a progress bar": r"\d+%\|[^|]*\|\s*\d+/\d+|it/s\]"}


def page_problems(page) -> list[str]:
    """Assets that did not load, sideways overflow, forbidden text and unrendered math on an open page (empty when
    the page is fine)."""
    import re

    problems = [f"its own asset did not load: {b}" for b in getattr(page, "broken_assets", [])]
    # on a phone, code cells scroll in their own box (a wrapped line would hide Python's indentation)
    overflow = page.evaluate("""() => Array.from(document.querySelectorAll(
            'article pre, article table, article div.cell_output, article div.highlight'))
        .filter(e => !(window.innerWidth <= 600 && e.closest('div.cell_input')))
        .filter(e => e.scrollWidth > e.clientWidth + 1)
        .map(e => e.tagName.toLowerCase() + ': ' + (e.innerText || '').slice(0, 60))""")
    problems += [f"overflows its column: {o!r}" for o in overflow]
    sideways = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    if sideways > 1:
        problems.append(f"scrolls sideways by {sideways} px at {page.viewport_size['width']} px wide")
    broken = page.evaluate(BROKEN_WORDS_JS)
    if broken:
        problems.append(f"{len(broken)} word(s) or number(s) broken inside a table cell: {broken[:6]}")
    bad_cells = page.evaluate("""() => Array.from(document.querySelectorAll('article td, article th'))
        .map(c => c.innerText.trim()).filter(t => /^(nan|NaN|None|<NA>)$/.test(t))""")
    if bad_cells:
        problems.append(f"a table cell shows {bad_cells[0]!r} instead of a dash")
    empty_rows = page.evaluate("""() => Array.from(document.querySelectorAll('article thead tr'))
        .filter(r => r.querySelectorAll('th').length > 1 && Array.from(r.querySelectorAll('th'))
            .every(th => th.innerText.trim() === '')).length""")
    if empty_rows:
        problems.append(f"{empty_rows} empty table header row(s)")
    text = page.locator("article").first.inner_text()
    for what, pattern in FORBIDDEN.items():
        match = re.search(pattern, text)
        if match:
            problems.append(f"shows {what}: {text[max(0, match.start() - 40):match.end() + 40]!r}")
    if page.locator("article .math").count():
        try:
            page.wait_for_function("() => document.querySelectorAll('article mjx-container').length > 0",
                                   timeout=20_000)
        except Exception:  # playwright's TimeoutError
            problems.append("formulas are not rendered (no MathJax output)")
        raw = page.evaluate("""() => Array.from(document.querySelectorAll('article .math'))
            .filter(e => !e.querySelector('mjx-container')).length""")
        if raw:
            problems.append(f"{raw} formula(s) left as raw TeX")
    return problems


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

        problems = page_problems(page)
        assert not problems, f"{doc}: " + "; ".join(problems[:5])
        if doc in SCREENSHOT_PAGES:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{SCREENSHOT_PAGES[doc]}.png"), full_page=doc == "book/intro")
        page.close()
    for name in SCREENSHOT_PAGES.values():
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000, f"the {name} screenshot is empty"
    assert len(checked_links) > 20, "suspiciously few internal links were followed"


def test_every_page_on_a_phone(book_tool, site, browser):
    """The same pages at a phone's width: nothing scrolls the page sideways, no table cell breaks a word or a
    number (wide tables scroll in their own box), no asset fails; the landing page and a chapter are photographed."""
    for doc in book_tool.toc_files():
        page = _open(browser, urljoin(site, f"{doc}.html"), width=PHONE_WIDTH)
        problems = page_problems(page)
        assert not problems, f"{doc} on a phone: " + "; ".join(problems[:5])
        if doc in PHONE_SCREENSHOTS:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{PHONE_SCREENSHOTS[doc]}.png"))
        page.close()
    for name in PHONE_SCREENSHOTS.values():
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000, f"the {name} screenshot is empty"


def test_the_instructor_edition_in_a_real_browser(site, browser):
    """The teacher's printable edition: its own CSS, JS and MathJax load (no 404), formulas render, every solution
    is open, its in-page links resolve, it does not scroll sideways on a phone; screenshots go to
    ``_build/screenshots/instructor.png`` and ``instructor-phone.png``."""
    page = _open(browser, urljoin(site, "teaching/instructor/index.html"))
    assert "instructor edition" in page.title(), page.title()
    problems = [p for p in page_problems(page) if not p.startswith("overflows")]  # a printout, not a column
    assert not problems, "instructor edition: " + "; ".join(problems[:5])
    # solutions are dropdown admonitions: on the site they fold; here each one's body must show
    solutions, folded = page.evaluate("""() => {
        const all = Array.from(document.querySelectorAll('.admonition.dropdown'));
        const hidden = all.filter(a => a.classList.contains('toggle-hidden') || Array.from(a.children)
            .filter(c => !c.classList.contains('admonition-title')).some(c => c.getClientRects().length === 0));
        return [all.length, hidden.length];
    }""")
    assert solutions >= 8 and folded == 0, f"{folded} of {solutions} solution(s) folded"
    ids = set(page.evaluate("() => Array.from(document.querySelectorAll('[id]')).map(e => e.id)"))
    anchors = page.evaluate("""() => Array.from(document.querySelectorAll('article a[href^="#"]'))
        .map(a => a.getAttribute('href').slice(1)).filter(h => h)""")
    missing = sorted({a for a in anchors if a not in ids})
    assert len(anchors) > 20 and not missing, f"in-page links to missing anchors: {missing[:5]}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "instructor.png"))
    page.close()
    phone = _open(browser, urljoin(site, "teaching/instructor/index.html"), width=PHONE_WIDTH)
    sideways = phone.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert sideways <= 1, f"the instructor edition scrolls sideways by {sideways} px on a phone"
    phone.screenshot(path=str(SCREENSHOTS / "instructor-phone.png"))
    phone.close()
    for name in ("instructor", "instructor-phone"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000, f"the {name} screenshot is empty"


def _playground(page):
    page.wait_for_function("() => document.getElementById('labclip-playground')?.dataset.ready", timeout=60_000)
    state = page.eval_on_selector("#labclip-playground", "e => e.dataset.ready")
    assert state == "true", f"the playground did not start: {page.inner_text('#labclip-playground')[:300]!r}"


def _shown_scores(page) -> dict[str, tuple[float, float]]:
    """Each model's score of caption A and B as the page shows it (4 decimals) and as it holds it (every digit)."""
    cells = page.eval_on_selector_all(".lp-score", """cs => cs.map(c => [c.dataset.model + ' ' + c.dataset.caption,
        c.firstChild.textContent, c.dataset.value])""")
    return {key: (float(shown), float(held)) for key, shown, held in cells}


def test_the_playground_runs_in_the_browser(site, browser):
    """The website's playground, with no kernel: for the captions the chapter scored in Python (its checks), typed
    into the page, the scores shown equal Python's to 1e-4 (and those held to 1e-5); an unknown word is refused by
    name; the swap button writes the swap partner; the page works on a phone. Screenshots: ``playground.png``,
    ``playground-phone.png``."""
    page = _open(browser, urljoin(site, "notebooks/08_playground.html"))
    _playground(page)
    data = page.evaluate("""() => ({checks: window.LABCLIP_PLAYGROUND.checks,
                                    scenes: window.LABCLIP_PLAYGROUND.scenes.length})""")
    assert data["scenes"] >= 24 and page.locator(".lp-thumb").count() == data["scenes"]
    assert len(data["checks"]) >= 5, "the chapter exported too few Python scores to compare with"
    first = _shown_scores(page)  # scene 0 with its own pair, as the page opens
    for check in data["checks"]:
        page.click(f".lp-thumb[data-scene='{check['scene']}']")
        page.fill("#lp-caption-a", "")
        page.type("#lp-caption-a", check["caption A"])  # key by key, as a reader types
        page.fill("#lp-caption-b", check["caption B"])
        assert page.inner_text("#lp-error") == "", page.inner_text("#lp-error")
        shown = _shown_scores(page)
        for key, python in check.items():
            if key.startswith(("CLIP ", "LABCLIP ")):
                assert abs(shown[key][0] - python) <= 1e-4 and abs(shown[key][1] - python) <= 1e-5, (
                    f"scene {check['scene']}, {check['caption A']!r} / {check['caption B']!r}: {key} shows "
                    f"{shown[key]} but Python computed {python}")
        if check["scene"] == 0 and (check["caption A"], check["caption B"]) == tuple(
                page.evaluate("() => [LABCLIP_PLAYGROUND.scenes[0].caption, LABCLIP_PLAYGROUND.scenes[0].negative]")):
            assert shown == first, "the page's opening scores differ from the same pair typed"
    page.fill("#lp-caption-a", "a red dodecahedron")
    assert "dodecahedron" in page.inner_text("#lp-error") and "cylinder" in page.inner_text("#lp-error")
    page.fill("#lp-caption-a", "a red cube and a purple sphere")
    page.click("#lp-swap")
    assert page.input_value("#lp-caption-b") == "a purple cube and a red sphere"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.click(".lp-thumb[data-scene='0']")
    page.click("#lp-reset")
    page.locator("#labclip-playground").screenshot(path=str(SCREENSHOTS / "playground.png"))
    page.close()

    phone = _open(browser, urljoin(site, "notebooks/08_playground.html"), width=PHONE_WIDTH)
    _playground(phone)
    problems = page_problems(phone)
    assert not problems, "the playground on a phone: " + "; ".join(problems[:5])
    # the page scrolled to the playground, under the theme's sticky header (an element shot would sit beneath it)
    phone.evaluate("() => window.scrollTo(0, document.getElementById('labclip-playground').getBoundingClientRect().top"
                   " + window.scrollY - 70)")
    phone.screenshot(path=str(SCREENSHOTS / "playground-phone.png"))
    phone.close()
    for name in ("playground", "playground-phone"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000, f"the {name} screenshot is empty"


def test_the_checks_catch_a_bad_page(browser, tmp_path):
    """The page checks fail on an asset that does not load, overflow, a page that scrolls sideways, a number broken
    inside a table cell, a NaN cell, an empty header row, a warning, a traceback, a progress bar and raw TeX."""
    (tmp_path / "bad.html").write_text("""<html><head><link rel="stylesheet" href="_static/missing.css"></head>
        <body><article style="width:400px">
        <pre style="white-space:pre;overflow:auto">""" + "x" * 400 + """</pre>
        <p>WARNING:root:No pretrained weights loaded</p><p>Traceback (most recent call last):</p>
        <p>encoding images:  40%|####      | 4/10 [00:01<00:02, 3.1it/s]</p>
        <span class="math">\\(x^2\\)</span>
        <table style="width:60px"><thead><tr><th></th><th></th></tr></thead>
        <tbody><tr><td style="overflow-wrap:anywhere">0.5523456789</td><td>NaN</td></tr></tbody></table>
        <div style="width:3000px">wide</div></article></body></html>""")
    with _serve(tmp_path) as url:
        page = _open(browser, urljoin(url, "bad.html"))
        problems = " ".join(page_problems(page))
        page.close()
    for what in ("did not load: HTTP 404", "overflows", "a warning", "a traceback", "a progress bar", "not rendered",
                 "scrolls sideways", "broken inside a table cell: ['0.5523456789']", "shows 'NaN'",
                 "1 empty table header row"):
        assert what in problems, f"missed {what}: {problems}"


def browser_request_ok(page, url: str) -> bool:
    """Fetch ``url`` through the browser's own network stack (same server, same cookies)."""
    return page.request.get(url).ok
