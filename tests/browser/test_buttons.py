"""The four buttons in a real browser: each changes the data (checked through the API) and says so."""

from datetime import UTC, datetime, timedelta

from playwright.async_api import Page, expect

from tests.browser.conftest import Pages, live, row
from tests.conftest import Api
from tests.support.sandbox import Sandbox
from tests.support.stack import eventually


async def status_of(api: Api, lead_id: str) -> str:
    status, _, body = await api.get(f"/api/leads/{lead_id}")
    assert status == 200
    return body["lead"]["status"]


async def success(page: Page) -> None:
    await expect(page.locator('[data-testid="notice"][data-kind="success"]').first).to_be_visible()


async def test_the_status_control_moves_a_lead(pages: Pages, api: Api, org: str) -> None:
    lead = (await api.create_lead())["id"]
    page = await pages.open(org)
    await live(page)
    await row(page, lead).get_by_test_id("status-control").select_option("qualified")
    await success(page)
    assert await eventually(lambda: status_of(api, lead), what="the move") == "qualified"
    assert await status_of(api, lead) == "qualified"
    await expect(row(page, lead)).to_have_attribute("data-status", "qualified")


async def test_a_row_offers_only_the_moves_the_rules_allow(pages: Pages, api: Api, org: str) -> None:
    leads = {s: (await api.create_lead(f"Lead {s}"))["id"] for s in ("new", "qualified", "won", "lost")}
    for status in ("qualified", "won", "lost"):
        assert (await api.post("/api/leads/update-status", {"leadId": leads[status], "status": status}))[0] == 200
    _, _, published = await api.get("/api/leads/statuses")
    page = await pages.open(org)
    for status, lead in leads.items():
        await expect(row(page, lead)).to_have_attribute("data-status", status)
        control = row(page, lead).get_by_test_id("status-control")
        offered = [
            v
            for v in await control.locator("option:not([disabled])").evaluate_all(
                "options => options.map(o => o.value)"
            )
            if v
        ]
        assert offered == published["moves"][status], status
    assert "new" not in published["moves"]["qualified"] and published["moves"]["won"] == []
    await expect(row(page, leads["won"]).get_by_test_id("status-control")).to_be_disabled()


async def test_bulk_apply_says_how_many_will_change_then_moves_them(pages: Pages, api: Api, org: str) -> None:
    ids = [(await api.create_lead(f"Bulk {i}"))["id"] for i in range(3)]
    await api.post("/api/leads/update-status", {"leadId": ids[2], "status": "contacted"})
    page = await pages.open(org)
    for lead in ids:
        await row(page, lead).get_by_test_id("bulk-select").check()
    await page.get_by_test_id("bulk-status").select_option("contacted")
    await expect(page.get_by_test_id("bulk-apply")).to_have_attribute("data-will-change", "2")
    await page.get_by_test_id("bulk-apply").click()
    await success(page)
    for lead in ids:
        assert await eventually(lambda lead=lead: status_of(api, lead), what="the bulk move") == "contacted"
        await expect(row(page, lead)).to_have_attribute("data-status", "contacted")


async def test_a_409_is_said_in_words(pages: Pages, api: Api, org: str) -> None:
    lead = (await api.create_lead("Grace Hopper"))["id"]
    page = await pages.open(org)
    await expect(row(page, lead)).to_have_attribute("data-status", "new")
    await page.context.set_offline(True)  # the page does not hear of the other change
    assert (await api.post("/api/leads/update-status", {"leadId": lead, "status": "won"}))[0] == 200
    await row(page, lead).get_by_test_id("status-control").select_option("contacted")
    await page.context.set_offline(False)
    error = page.locator('[data-testid="notice"][data-kind="error"]')
    await expect(error).to_contain_text("moved Grace Hopper to won first")
    assert "409" not in await error.inner_text()
    assert await status_of(api, lead) == "won"
    await expect(row(page, lead)).to_have_attribute("data-status", "won")


async def test_a_bulk_refusal_names_the_blocking_leads(pages: Pages, api: Api, org: str) -> None:
    fine = (await api.create_lead("Fine Lead"))["id"]
    won = (await api.create_lead("Won Lead"))["id"]
    await api.post("/api/leads/update-status", {"leadId": won, "status": "won"})
    page = await pages.open(org)
    for lead in (fine, won):
        await row(page, lead).get_by_test_id("bulk-select").check()
    await page.get_by_test_id("bulk-status").select_option("lost")
    await expect(page.get_by_test_id("bulk-apply")).to_have_attribute("data-will-change", "1")
    await page.get_by_test_id("bulk-apply").click()
    error = page.locator('[data-testid="notice"][data-kind="error"]')
    await expect(error).to_contain_text("Won Lead")
    await expect(error).not_to_contain_text("Fine Lead")
    assert await status_of(api, fine) == "new"


async def test_send_sms_texts_the_lead(pages: Pages, api: Api, org: str, sandbox: Sandbox) -> None:
    phone = "+14155550123"
    lead = (await api.create_lead("Ada Texted", phone))["id"]
    page = await pages.open(org)
    await row(page, lead).get_by_role("button", name="open Ada Texted").click()
    await page.get_by_test_id("sms-message").fill("See you tomorrow!")
    await page.get_by_test_id("sms-send").click()
    await success(page)
    _, _, history = await api.get(f"/api/leads/{lead}/sms-history")
    assert [m["body"] for m in history["sms_messages"]] == ["See you tomorrow!"]
    assert [m["body"] for m in await sandbox.messages_to(phone)] == ["See you tomorrow!"]
    # the delivery status comes live
    await expect(page.locator('#sms-history [data-sms-status="delivered"]')).to_be_visible()


async def test_confirm_confirms_the_appointment(pages: Pages, api: Api, org: str) -> None:
    lead = (await api.create_lead("Booked Lead"))["id"]
    starts = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat()
    status, _, body = await api.post("/api/appointments", {"leadId": lead, "startsAt": starts, "title": "Intro"})
    assert status == 201
    appointment = body["appointment"]["id"]
    page = await pages.open(org)
    await row(page, lead).get_by_role("button", name="open Booked Lead").click()
    await page.locator(f'[data-testid="appointment-confirm"][data-appointment-id="{appointment}"]').click()
    await success(page)
    _, _, got = await api.get(f"/api/appointments/{appointment}")
    assert got["appointment"]["status"] == "confirmed"
