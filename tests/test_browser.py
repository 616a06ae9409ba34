"""The app in a real browser: `streamlit run app.py` headless on a free loopback port, driven by headless
Debian Chromium over the DevTools protocol (a small client on `websockets`, which Streamlit already needs).

Asks the seed question on the demo corpus plus one article whose title and text carry HTML/script injection,
then checks the rendered DOM: one column per source side by side, verified-quote badges, a quote expanding to
its highlighted paragraph, the timeline chart, no horizontal overflow, and the injected markup shown as text
(no script ran). Screenshots go to artifacts/ (ignored by git).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from pages.results import columns_per_row
from tests.conftest import REPO
from tests.test_app import DEMO_SOURCES, QUESTION, demo_store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO / "artifacts"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-extensions",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-allow-origins=*",
)
INJECTED_TITLE = "US aid <img src=x onerror=\"window.__pwned='title'\"> briefing"
INJECTED_TEXT = (
    "The United States position on Ukraine changed again this week, officials said, as Washington weighed "
    "new military aid and longer-range weapons for Kyiv. <script>window.__pwned = 'script'</script> "
    "Officials said the US would keep supporting Ukraine. <img src=x onerror=\"window.__pwned='text'\"> "
    "The administration said its support for Ukraine's defence was unwavering and would continue."
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium not installed (`apt-get install -y chromium`; .ci/run does it)"
    ),
]
_ = demo_store  # the session fixture, shared with test_app.py


class Chromium:
    """Headless Chromium with a fresh profile, driven over one DevTools websocket (one page)."""

    def __init__(self, profile: Path, width: int = 1400, height: int = 1000) -> None:
        self.profile = profile
        self.process = subprocess.Popen(
            [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._id = 0
        self.socket = self._connect()
        self.size(width, height)

    def _connect(self) -> ClientConnection:
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            pages = [t for t in json.load(response) if t["type"] == "page"]
        return connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=10)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.socket.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := self.js(expression):
                return value
            time.sleep(0.1)
        raise TimeoutError(f"not true after {timeout} s: {expression}")

    def size(self, width: int, height: int) -> None:
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)  # fmt: skip

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def click(self, element_js: str) -> None:
        """A real mouse click at the centre of the element (scrolled into view first)."""
        box = self.js(
            f"(() => {{ const e = {element_js}; e.scrollIntoView({{block: 'center'}}); "
            "const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def type_into(self, selector: str, text: str) -> None:
        self.js(f"document.querySelector({json.dumps(selector)}).focus()")
        self.js(f"document.querySelector({json.dumps(selector)}).select()")
        self.send("Input.insertText", text=text)

    def screenshot(self, path: Path) -> None:
        """The whole page: the viewport is stretched to the height of Streamlit's scrolling main block."""
        height = int(self.js("document.querySelector('[data-testid=\"stMain\"]').scrollHeight") or 1000)
        width = int(self.js("window.innerWidth"))
        self.size(width, min(height + 40, 12000))
        time.sleep(1.0)  # let charts re-layout to the new size
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        self.size(width, 1000)

    def close(self) -> None:
        try:
            self.socket.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def browser_store(demo_store: Path, tmp_path: Path) -> Path:
    """The demo store plus one article with HTML and script injection in its title and text."""
    data_dir = tmp_path / "browser-data"
    shutil.copytree(demo_store, data_dir)
    article = tmp_path / "injected.txt"
    article.write_text(INJECTED_TEXT, encoding="utf-8")
    ncompare = Path(sys.executable).with_name("ncompare")
    subprocess.run([str(ncompare), "ingest", str(article), "--source", "injected-blog", "--date", "2024-12-01",
                    "--title", INJECTED_TITLE, "--url", "javascript:alert(1)", "--data-dir", str(data_dir)],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    return data_dir


@pytest.fixture
def app_url(browser_store: Path, tmp_path: Path) -> Iterator[str]:
    """`streamlit run app.py` on a free loopback port (the repo's .streamlit/config.toml applies)."""
    port = _free_port()
    log = (tmp_path / "streamlit.log").open("w")
    env = {**os.environ, "NCOMPARE_DATA_DIR": str(browser_store)}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _wait_healthy(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("streamlit did not become healthy")


SOURCES_JS = "[...document.querySelectorAll('.nc-source')].map(e => e.dataset.source)"
CHART_JS = (
    '(() => { const c = document.querySelector(\'[data-testid="stVegaLiteChart"] canvas, '
    '[data-testid="stVegaLiteChart"] svg\'); return !!c && c.getBoundingClientRect().height > 80; })()'
)


def _ask(browser: Chromium, question: str, expected_sources: int) -> float:
    browser.type_into('input[aria-label="Question"]', question)
    started = time.perf_counter()
    browser.click(
        "[...document.querySelectorAll('button')].find(b => b.innerText.trim().endsWith('Compare'))"
    )
    browser.wait_for(
        f"document.querySelectorAll('.nc-source').length === {expected_sources} && "
        f"[...document.querySelectorAll('[data-testid=\"stHeading\"]')].some(e => e.textContent.includes("
        f"{json.dumps(question)}))",
        timeout=120,
    )
    return time.perf_counter() - started


def test_ask_in_a_real_browser(app_url: str, tmp_path: Path) -> None:
    browser = Chromium(tmp_path / "chromium-profile")
    try:
        browser.open(app_url)
        browser.wait_for("!!document.querySelector('input[aria-label=\"Question\"]')")
        cold = _ask(browser, QUESTION, len(DEMO_SOURCES) + 1)
        browser.wait_for(CHART_JS, timeout=30)
        sources = browser.js(SOURCES_JS)
        assert sorted(sources) == sorted([*DEMO_SOURCES, "injected-blog"])
        _assert_side_by_side(browser)
        _assert_quotes(browser)
        _assert_injection_is_text(browser)
        assert browser.js("document.documentElement.scrollWidth <= window.innerWidth + 1"), "page overflows"
        browser.screenshot(ARTIFACTS / "app-ask.png")
        warm = _ask(browser, "What did officials say about air defense for Ukraine?", len(DEMO_SOURCES) + 1)
        (ARTIFACTS / "app-timing.json").write_text(json.dumps({"cold_s": cold, "warm_s": warm}, indent=2))
        browser.open(f"{app_url}/corpus")
        browser.wait_for(CHART_JS, timeout=30)
        assert browser.js("document.body.innerText.includes('Coverage over time')")
        browser.screenshot(ARTIFACTS / "app-corpus.png")
    finally:
        browser.close()


def _assert_side_by_side(browser: Chromium) -> None:
    """The first row's source cards share a top edge and sit left to right, each in its own column."""
    boxes = browser.js(
        "[...document.querySelectorAll('.nc-source')].map(e => { const r = e.getBoundingClientRect(); "
        "return [Math.round(r.top), Math.round(r.left), Math.round(r.width), "
        "e.closest('[data-testid=\"stColumn\"]') !== null]; })"
    )
    first_row = [b for b in boxes if abs(b[0] - boxes[0][0]) <= 2]
    assert len(first_row) == columns_per_row(len(boxes)) == 3, boxes  # 5 sources: rows of 3 and 2
    assert [b[1] for b in first_row] == sorted(b[1] for b in first_row) and all(b[3] for b in boxes)
    assert min(b[2] for b in first_row) > 200, "columns too narrow to read"


def _assert_quotes(browser: Chromium) -> None:
    badges = browser.js("[...document.querySelectorAll('.nc-source .nc-badge')].map(e => e.textContent)")
    assert "✓ verified" in badges
    browser.click("document.querySelector('.nc-source .nc-quote summary')")
    browser.wait_for("(() => { const m = document.querySelector('.nc-quote[open] mark'); "
                     "return !!m && m.getBoundingClientRect().height > 0; })()")  # fmt: skip
    assert browser.js("!!document.querySelector('.nc-quote[open] .nc-doc')")


def _assert_injection_is_text(browser: Chromium) -> None:
    assert browser.js("window.__pwned === undefined"), "injected script ran"
    card_js = "[...document.querySelectorAll('.nc-source')].find(e => e.dataset.source === 'injected-blog')"
    markup = browser.js(f"{card_js}.innerHTML")
    assert "<img" not in markup and "<script" not in markup and "javascript:" not in markup
    text = browser.js(f"{card_js}.textContent")
    assert "onerror=" in text, "the injected title is shown as text in the quote's document line"
