"""Browser tests: Playwright for Python driving Debian's Chromium headless against the real stack.

Nothing here is skipped: without Chromium the run fails and says how to get it (`make test`
installs Debian's package; never `playwright install`, which downloads a browser).
"""

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    async_playwright,
    expect,
)

from services.gateway.auth import issue
from tests.support.stack import TEST_SECRET, Stack

# The machines are shared and small: waits are on conditions, with room to spare.
expect.set_options(timeout=20_000)


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "the browser tests need Chromium: run `make test` (it installs Debian's package), "
            "or `apt-get install -y chromium`; never `playwright install`",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as started:
        yield started


@pytest.fixture(scope="session")
async def browser(playwright: Playwright) -> AsyncIterator[Browser]:
    launched = await playwright.chromium.launch(executable_path=chromium_path())
    yield launched
    await launched.close()


def token_for(org: str, user: str = "agent-1", ttl: int = 3600) -> str:
    return issue(TEST_SECRET, org, user, ttl)


class Pages:
    """Opens signed-in pages (each in its own browser context) and checks none threw a JavaScript error."""

    def __init__(self, browser: Browser, url: str):
        self.browser, self.url = browser, url
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    async def context(self, **options: object) -> BrowserContext:
        context = await self.browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **options})
        context.set_default_timeout(20_000)
        self.contexts.append(context)
        return context

    async def open(
        self,
        org: str | None = None,
        *,
        context: BrowserContext | None = None,
        url: str | None = None,
        token: str | None = None,
        **options: object,
    ) -> Page:
        context = context or await self.context(**options)
        page = await context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        if org is not None or token is not None:
            await page.add_init_script(
                f"localStorage.getItem('crm.token') || localStorage.setItem('crm.token', {token or token_for(org)!r})"
            )  # type: ignore[arg-type]
        await page.goto((url or self.url) + "/")
        return page

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


@pytest.fixture
async def pages(browser: Browser, stack: Stack) -> AsyncIterator[Pages]:
    opened = Pages(browser, stack.url)
    yield opened
    await opened.close()
    assert opened.errors == [], f"the page threw: {opened.errors}"


async def live(page: Page) -> None:
    await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "live")


def row(page: Page, lead_id: str):  # type: ignore[no-untyped-def]
    return page.locator(f'[data-testid="lead-row"][data-lead-id="{lead_id}"]')


def screenshots_dir() -> Path:
    """Where the README's screenshots are written: docs/ with UPDATE_SCREENSHOTS=1 (`make screenshots`),
    else a scratch folder, so that a test run leaves the work tree as it found it."""
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        return Path(__file__).resolve().parents[2] / "docs"
    scratch = Path(tempfile.gettempdir()) / "crm-screenshots"
    scratch.mkdir(exist_ok=True)
    return scratch
