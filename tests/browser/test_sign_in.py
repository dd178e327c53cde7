"""Without a valid token the page shows the sign-in, and nothing else."""

from playwright.async_api import Page, expect

from tests.browser.conftest import Pages, live, row, token_for
from tests.conftest import Api
from tests.support.stack import Stack, free_port, wait_http


async def only_sign_in(page: Page, words: str) -> None:
    await expect(page.get_by_test_id("token-input")).to_be_visible()
    await expect(page.get_by_test_id("sign-in")).to_be_visible()
    await expect(page.get_by_test_id("sign-in-message")).to_contain_text(words)
    await expect(page.locator("#app")).to_be_hidden()
    await expect(page.get_by_test_id("lead-row")).to_have_count(0)


async def test_no_token_shows_the_sign_in_and_a_token_signs_in(pages: Pages, api: Api, org: str) -> None:
    lead = (await api.create_lead())["id"]
    page = await pages.open()
    await only_sign_in(page, "Sign in")
    await expect(page.get_by_test_id("dev-sign-in")).to_be_hidden()  # DEV_LOGIN is off here
    await page.get_by_test_id("token-input").fill(token_for(org))
    await page.get_by_test_id("sign-in").click()
    await live(page)
    await expect(row(page, lead)).to_be_visible()


async def test_an_expired_token_shows_the_sign_in_message(pages: Pages, org: str) -> None:
    page = await pages.open(token=token_for(org, ttl=-60))
    await only_sign_in(page, "expired")


async def test_a_token_the_server_refuses_shows_the_sign_in_message(pages: Pages, org: str) -> None:
    from services.gateway.auth import issue

    forged = issue("another-secret-" + "y" * 40, org, "mallory")
    page = await pages.open(token=forged)
    await only_sign_in(page, "no longer accepted")
    await page.get_by_test_id("token-input").fill("not a token")
    await page.get_by_test_id("sign-in").click()
    await only_sign_in(page, "not an access token")


async def test_sign_in_as_demo_agent_when_the_development_setting_is_on(
    pages: Pages, api: Api, org: str, stack: Stack
) -> None:
    port = free_port()
    dev = stack.start(
        "gateway-dev-browser",
        "services.gateway",
        GATEWAY_PORT=str(port),
        DEV_LOGIN="true",
        DEV_LOGIN_ORG=org,
        DEV_LOGIN_USER="demo-agent",
    )
    try:
        await wait_http(f"http://127.0.0.1:{port}/readyz", 30, "the DEV_LOGIN gateway")
        lead = (await api.create_lead("Demo Lead"))["id"]
        page = await pages.open(url=f"http://127.0.0.1:{port}")
        await page.get_by_test_id("dev-sign-in").click()
        await live(page)
        await expect(row(page, lead)).to_be_visible()
        await expect(page.locator("#who")).to_contain_text("demo-agent")
    finally:
        dev.stop()
