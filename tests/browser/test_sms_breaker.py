"""The page's SMS circuit breaker: after repeated provider-down answers it stops sending for a cool-down."""

import aiohttp
from playwright.async_api import expect

from tests.browser.conftest import Pages, row
from tests.conftest import Api
from tests.support.sandbox import Sandbox
from tests.support.stack import Stack, eventually


async def test_the_sms_breaker_opens_when_the_provider_fails_and_recovers(
    pages: Pages, api: Api, org: str, sandbox: Sandbox, stack: Stack, http: aiohttp.ClientSession
) -> None:
    phone = "+14155550188"
    lead = (await api.create_lead("Breaker Lead", phone))["id"]
    context = await pages.context()
    await context.add_init_script("window.CRM_CONSOLE_CONFIG = {smsBreakerThreshold: 3, smsBreakerCooldownMs: 2500}")
    page = await pages.open(org, context=context)
    await row(page, lead).get_by_role("button", name="open Breaker Lead").click()
    send = page.get_by_test_id("sms-send")
    await sandbox.behave(mode="error", status=503, count=10_000)

    async def sms_count() -> int:
        return len((await api.get(f"/api/leads/{lead}/sms-history"))[2]["sms_messages"])

    for i in range(3):
        await expect(page.get_by_test_id("pending-count")).to_have_attribute("data-count", "0")
        await page.get_by_test_id("sms-message").fill(f"Attempt {i}")
        await send.click()
        await eventually(lambda i=i: _at_least(sms_count, i + 1), 20, what=f"SMS {i} recorded")
    await expect(send).to_have_attribute("data-breaker", "open")
    before = await sms_count()
    await page.get_by_test_id("sms-message").fill("Refused in the page")
    await send.click()
    await expect(page.locator('[data-testid="notice"][data-kind="error"]').filter(has_text="Not sent")).to_be_visible()
    assert await sms_count() == before  # nothing reached the gateway

    await sandbox.behave(mode="ok")

    async def provider_calls_allowed() -> bool:
        async with http.get(stack.url + "/readyz") as response:
            return (await response.json())["services"]["sms"].get("breaker") in ("closed", "half_open")

    await eventually(provider_calls_allowed, 30, 0.2, "the SMS service's breaker to let calls through")
    await expect(send).to_have_attribute("data-breaker", "half_open")
    await page.get_by_test_id("sms-message").fill("Back again")
    await send.click()
    await expect(send).to_have_attribute("data-breaker", "closed")
    assert [m["body"] for m in await sandbox.messages_to(phone)].count("Back again") == 1


async def _at_least(count, n: int) -> bool:  # type: ignore[no-untyped-def]
    return await count() >= n
