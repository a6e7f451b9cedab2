"""Browser tests: Playwright (async API) driving the machine's Chromium against the real service.

Playwright's own browser download does not work here, so the OS package is used
(``/usr/bin/chromium``, installed by ``scripts/ensure-os-packages.sh`` in ``make test``); without it the
tests are skipped with the reason. One browser per module, one fresh service and database per test,
all on the module's event loop (the browser and the server must share a loop). SQLite only: the
storage backends are covered by the rest of the suite, this is about the pages.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from handlers import candidates
from handlers.clock import ManualClock
from handlers.settings import Settings
from tests.chat import Playground
from tests.conftest import _sqlite_template, make_settings

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 10_000  # auto-waiting bound for every locator and navigation



def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = ""
    if not CHROMIUM.exists():
        reason = "no /usr/bin/chromium (install the OS package: scripts/ensure-os-packages.sh, run by make test)"
    else:
        try:
            import playwright.async_api  # noqa: F401
        except ImportError:
            reason = "playwright is not installed (pip install -e '.[test]')"
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield b
        await b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Screenshots of this run; ``CRAFTLINK_SCREENSHOT_DIR=docs`` also copies them there (for the README)."""
    return tmp_path_factory.mktemp("console-screenshots")


def keep(shot: Path) -> None:
    target = os.environ.get("CRAFTLINK_SCREENSHOT_DIR")
    if target:
        shutil.copy(shot, Path(target) / shot.name)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest_asyncio.fixture(loop_scope="module")
async def settings(tmp_path: Path, tmp_root: Path) -> Settings:
    candidates.reset_index()
    path = tmp_path / "craftlink.db"
    shutil.copy(await _sqlite_template(tmp_root), path)
    return make_settings(f"sqlite+aiosqlite:///{path}", tmp_path, bot={"review_required": True})


@pytest_asyncio.fixture(loop_scope="module")
async def playground(settings: Settings, clock: ManualClock) -> AsyncIterator[Playground]:
    app = create_app(settings, clock=clock, run_scheduler=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        pg = Playground(client, clock)
        await pg.seed_demo()
        yield pg


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    context.set_default_timeout(TIMEOUT_MS)
    pg = await context.new_page()
    yield pg
    await context.close()
