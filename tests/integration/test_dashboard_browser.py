"""The dashboard in a real browser: a real ``gnosis run --dashboard`` process on the simulated
market, Debian's headless chromium driven by Playwright. The page must fill in from live
WebSocket updates, fall back to polling when the socket dies, and reconnect.

Screenshots land in ``test-artifacts/`` (printed). Without chromium this test fails: a browser
test that silently skips would claim a check that never ran (``make setup`` installs it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, WebSocketRoute, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TOKEN = "browser-test-token"
WAIT_MS = 60_000  # an upper bound for a broken run, not a speed requirement


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium "
                    "(apt-get install chromium) for this test")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Bot:
    """``gnosis run --dashboard`` in a subprocess on a free port; its console is drained."""

    def __init__(self, state_dir: Path, strategy: str, speed: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gnosis.cli", "run", "--dashboard", "--port", "0",
             "--token", TOKEN, "--strategy", strategy, "--speed", str(speed),
             "--symbols", "SPY,QQQ", "--seed", "5", "--warmup-days", "1", "--days", "10",
             "--state-dir", str(state_dir), "--fresh", "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.url = ""
        self.lines: list[str] = []
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            found = re.search(r"^dashboard: (http://127\.0\.0\.1:\d+)$", line.strip())
            if found:
                self.url = found.group(1)
                break
        assert self.url, "gnosis run did not print the dashboard URL:\n" + "".join(self.lines)
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def stop(self) -> None:
        # SIGTERM first (a clean stop); a core with a backlog of bars to commit takes a while
        # to reach the stop command, and this test has nothing left to check: then SIGKILL,
        # which the crash-safe state is built for
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._drainer.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def pages(browser: Browser) -> Iterator[Any]:
    opened: list[Page] = []

    def open_page() -> Page:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.errors = errors  # type: ignore[attr-defined]
        opened.append(page)
        return page

    yield open_page
    for page in opened:
        page.close()


@pytest.fixture
def bot_factory(tmp_path: Path) -> Iterator[Any]:
    bots: list[Bot] = []

    def start(strategy: str, speed: int) -> Bot:
        bot = Bot(tmp_path / strategy, strategy, speed)
        bots.append(bot)
        return bot

    yield start
    for bot in bots:
        bot.stop()


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


def drawn_pixels(page: Page, selector: str) -> int:
    """Pixels of the chart's canvases painted in a candle colour (green or red)."""
    return int(page.evaluate("""(selector) => {
        let count = 0;
        for (const canvas of document.querySelectorAll(selector + ' canvas')) {
            const ctx = canvas.getContext('2d');
            if (!ctx || !canvas.width || !canvas.height) continue;
            const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
            for (let i = 0; i < data.length; i += 4) {
                const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
                if ((g > 140 && r < 80 && b > 120) || (r > 200 && g < 110 && b < 110)) count++;
            }
        }
        return count;
    }""", selector))


def test_the_page_fills_in_live_falls_back_to_polling_and_reconnects(
        bot_factory: Any, pages: Any) -> None:
    bot = bot_factory("agents", 1_200)
    sockets: list[WebSocketRoute] = []
    refuse = {"next": 0}

    def route(ws: WebSocketRoute) -> None:
        if refuse["next"] > 0:  # the network is still down: the connection dies at once
            refuse["next"] -= 1
            ws.close(code=1011, reason="network down (test)")
            return
        ws.connect_to_server()
        sockets.append(ws)

    page = pages()
    page.route_web_socket(re.compile(r".*/ws$"), route)
    page.goto(bot.url)

    connection = page.locator("#connection")
    expect(connection).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(page.locator(".regime-badge")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#regime")).to_contain_text("confidence")
    cards = page.locator("#agents .card")
    expect(cards).to_have_count(5, timeout=WAIT_MS)
    for agent in ("hedge", "liquidity", "sentiment", "wyckoff", "markov"):
        expect(page.locator(f'#agents .card[data-agent="{agent}"] p')).not_to_be_empty()
    expect(page.locator("#trades tbody tr:not(.empty)").first).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#positions tbody tr:not(.empty)").first).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#st-equity")).to_have_text(re.compile(r"^\d{2,3},\d{3}\.\d\d$"))
    # memory is on by default in `gnosis run`: its recalls show with their evidence
    expect(page.locator("#memory")).to_contain_text("size ×", timeout=WAIT_MS)

    # the chart draws, and keeps growing from live bar messages (no polling while live)
    chart = page.locator("#chart")
    expect(chart.locator("canvas").first).to_be_attached()
    expect(chart).not_to_have_attribute("data-bars", re.compile(r"^\d?$"), timeout=WAIT_MS)
    bars_then = int(chart.get_attribute("data-bars") or 0)
    expect(chart).not_to_have_attribute("data-bars", str(bars_then), timeout=WAIT_MS)
    assert drawn_pixels(page, "#chart") > 200
    assert int(page.locator("#equity-chart").get_attribute("data-points") or 0) > 1
    shot(page, "dashboard.png")

    # the socket dies (and the first reconnection fails too): the page polls /api/state
    refuse["next"] = 1
    with page.expect_request(re.compile(r".*/api/state$"), timeout=WAIT_MS):
        for ws in sockets:
            ws.close(code=1006, reason="killed by the test")
        expect(connection).to_have_attribute("data-state", "polling", timeout=WAIT_MS)
    shot(page, "dashboard-polling.png")
    # ... and reconnects with backoff: green again, live updates again
    expect(connection).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    assert refuse["next"] == 0  # the refused attempt happened before the reconnection
    bars_then = int(chart.get_attribute("data-bars") or 0)
    expect(chart).not_to_have_attribute("data-bars", str(bars_then), timeout=WAIT_MS)

    # control from the page: the token, Halt, and the engine's state comes back live
    page.on("dialog", lambda dialog: dialog.accept())
    page.fill("#token", TOKEN)
    page.click('#control button[data-command="halt"]')
    expect(page.locator("#trading-state")).to_have_text("halted", timeout=WAIT_MS)
    expect(page.locator("#log")).to_contain_text("dashboard: halt requested")
    assert page.errors == []  # type: ignore[attr-defined]


def test_the_sma_strategy_says_what_it_does_not_have(bot_factory: Any, pages: Any) -> None:
    # (pages are set up after the bot, so they close before it stops)
    bot = bot_factory("sma", 1_200)
    page = pages()
    page.goto(bot.url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(page.locator("#regime")).to_contain_text("not available", timeout=WAIT_MS)
    expect(page.locator("#agents")).to_contain_text("no agents", timeout=WAIT_MS)
    expect(page.locator("#trades tbody tr:not(.empty)").first).to_be_visible(timeout=WAIT_MS)
    page.select_option("#symbol", "QQQ")
    expect(page.locator("#regime-symbol")).to_have_text("QQQ")
    expect(page.locator("#chart")).not_to_have_attribute("data-bars", re.compile(r"^\d?$"),
                                                       timeout=WAIT_MS)
    shot(page, "dashboard-sma.png")
    assert page.errors == []  # type: ignore[attr-defined]

    # without the chart library the chart panel says how to install it; the rest still works
    bare = pages()
    bare.route(re.compile(r".*/vendor/lightweight-charts\.mjs$"),
               lambda route: route.fulfill(status=404, body="not installed"))
    bare.goto(bot.url)
    expect(bare.locator("#chart-missing")).to_be_visible(timeout=WAIT_MS)
    expect(bare.locator("#chart-missing")).to_contain_text("npm ci")
    expect(bare.locator("#connection")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(bare.locator("#trades tbody tr:not(.empty)").first).to_be_visible(timeout=WAIT_MS)
