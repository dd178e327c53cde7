"""SMS campaigns from the page: made for the leads selected in Leads, started, followed live to the end;
Start / Pause / Resume / Cancel offered as the status allows; a refusal met on replay said in words;
the view usable at 390 px, and the README's screenshot (docs/console-campaigns.png).

The leads live in a time zone where it is about noon now (Etc/GMT±N), so the default window
(08:00-21:00) is open, and a window of 02:00-03:00 is surely closed (the targets wait).
"""

from uuid import uuid4

from playwright.async_api import Locator, Page, expect

from tests.browser.conftest import Pages, live, row, screenshots_dir
from tests.conftest import Api
from tests.support.clock import noon_zone
from tests.support.sandbox import Sandbox

DOCS = screenshots_dir()  # docs/ only with UPDATE_SCREENSHOTS=1
MOVES = ("start", "pause", "resume", "cancel")


def fresh_phone() -> str:
    """A number no other test of the run texts (the sandbox keeps every message of the run)."""
    return f"+1415{200 + uuid4().int % 800}{uuid4().int % 10000:04d}"


async def template(
    api: Api, name: str = "Spring offer", body: str = "Hi {{first_name}}, our spring offer is in!"
) -> dict:
    status, _, answer = await api.post("/api/sms/templates", {"name": name, "body": body})  # each test: its own org
    assert status == 201, answer
    return answer["template"]


async def lead(api: Api, name: str) -> str:
    status, _, body = await api.post("/api/leads", {"name": name, "phone": fresh_phone(), "timeZone": noon_zone()})
    assert status == 201, body
    return body["lead"]["id"]


async def campaign_of(api: Api, campaign_id: str) -> dict:
    status, _, body = await api.get(f"/api/campaigns/{campaign_id}?limit=1000")
    assert status == 200, body
    return body


def campaign_row(page: Page, campaign_id: str) -> Locator:
    return page.locator(f'[data-testid="campaign-row"][data-campaign-id="{campaign_id}"]')


async def offers(row_: Locator, *moves: str) -> None:
    """The row offers exactly these moves."""
    for move in MOVES:
        await expect(row_.get_by_test_id(f"campaign-{move}")).to_have_count(1 if move in moves else 0)


async def test_a_campaign_for_two_selected_leads_runs_live_to_the_end(
    pages: Pages, api: Api, org: str, sandbox: Sandbox
) -> None:
    made = await template(api)
    ada, grace = await lead(api, "Ada Campaign"), await lead(api, "Grace Campaign")
    left_out = await lead(api, "Left Out")
    page = await pages.open(org)
    await live(page)
    await row(page, ada).get_by_test_id("bulk-select").check()
    await row(page, grace).get_by_test_id("bulk-select").check()
    await page.get_by_test_id("campaigns-open").click()
    await expect(page).to_have_url(f"{pages.url}/#campaigns")
    await expect(page.get_by_test_id("lead-row").first).to_be_hidden()
    audience = page.get_by_test_id("campaign-status-filter")
    await expect(audience).to_have_value("")
    await expect(audience.locator("option:checked")).to_have_text("the 2 leads selected in Leads")
    await page.get_by_test_id("campaign-name").fill("Spring offer")
    await page.get_by_test_id("campaign-template").select_option(made["id"])
    await page.get_by_test_id("campaign-create").click()

    created = page.get_by_test_id("campaign-row")
    await expect(created).to_have_attribute("data-status", "draft")
    campaign_id = await created.get_attribute("data-campaign-id")
    got = (await campaign_of(api, campaign_id))["campaign"]
    assert (got["name"], got["template_id"], got["send_from"], got["send_until"]) == (
        "Spring offer",
        made["id"],
        "08:00:00",
        "21:00:00",
    )
    assert sorted(got["audience"]["leadIds"]) == sorted([ada, grace]) and left_out not in got["audience"]["leadIds"]
    await offers(created, "start", "cancel")

    await created.get_by_test_id("campaign-details").click()  # the per-lead outcomes, open while it runs
    await created.get_by_test_id("campaign-start").click()
    progress = created.get_by_test_id("campaign-progress")
    await expect(progress).to_have_attribute("data-total", "2")
    await expect(progress).to_have_attribute("data-sent", "2")
    await expect(progress).to_have_attribute("aria-valuenow", "2")
    await expect(progress).to_have_attribute("aria-valuetext", "2 of 2 sent")
    await expect(created).to_have_attribute("data-status", "completed")
    await offers(created)  # completed: nothing more to press
    await page.wait_for_function(
        "crmConsole.applied.some((a) => a.topic === 'campaigns.completed')"
    )  # live, not a reload
    targets = created.get_by_test_id("campaign-target")
    await expect(targets).to_have_count(2)
    for lead_id in (ada, grace):
        await expect(created.locator(f'[data-testid="campaign-target"][data-lead-id="{lead_id}"]')).to_have_attribute(
            "data-state", "sent"
        )
    assert {t["state"] for t in (await campaign_of(api, campaign_id))["targets"]} == {"sent"}


async def test_pause_resume_and_cancel_follow_the_status(pages: Pages, api: Api, org: str) -> None:
    made = await template(api)
    audience = [await lead(api, "Night Owl"), await lead(api, "Early Bird")]
    status, _, body = await api.post(
        "/api/campaigns",
        {
            "name": "After hours",
            "templateId": made["id"],
            "leadIds": audience,
            "sendFrom": "02:00",
            "sendUntil": "03:00",
        },
    )
    assert status == 201, body
    campaign_id = body["campaign"]["id"]
    page = await pages.open(org)
    await live(page)
    await page.get_by_test_id("campaigns-open").click()
    campaign = campaign_row(page, campaign_id)
    await expect(campaign).to_have_attribute("data-status", "draft")
    await offers(campaign, "start", "cancel")

    await campaign.get_by_test_id("campaign-start").click()
    await expect(campaign).to_have_attribute("data-status", "running")
    await offers(campaign, "pause", "cancel")
    await expect(campaign.get_by_test_id("campaign-progress")).to_have_attribute("data-total", "2")
    await expect(campaign).to_contain_text("0 of 2 sent · 2 waiting")
    await campaign.get_by_test_id("campaign-details").click()
    waiting = campaign.get_by_test_id("campaign-target")
    await expect(waiting).to_have_count(2)
    await expect(waiting.first).to_have_attribute("data-state", "waiting")
    await expect(waiting.first).to_contain_text("quiet hours")  # deferred to 02:00 local, not dropped

    await campaign.get_by_test_id("campaign-pause").click()
    await expect(campaign).to_have_attribute("data-status", "paused")
    await offers(campaign, "resume", "cancel")
    assert (await campaign_of(api, campaign_id))["campaign"]["status"] == "paused"
    await campaign.get_by_test_id("campaign-resume").click()
    await expect(campaign).to_have_attribute("data-status", "running")
    await offers(campaign, "pause", "cancel")

    assert (await api.post(f"/api/campaigns/{campaign_id}/pause", {}))[0] == 200  # pressed elsewhere: shown live
    await expect(campaign).to_have_attribute("data-status", "paused")
    await offers(campaign, "resume", "cancel")

    await campaign.get_by_test_id("campaign-cancel").click()
    await expect(campaign).to_have_attribute("data-status", "cancelled")
    await offers(campaign)
    await expect(waiting.first).to_have_attribute("data-state", "skipped")
    await expect(waiting.first).to_contain_text("the campaign was cancelled")
    assert {t["state"] for t in (await campaign_of(api, campaign_id))["targets"]} == {"skipped"}


async def test_a_pause_pressed_offline_and_refused_on_replay_is_said_in_words(pages: Pages, api: Api, org: str) -> None:
    made = await template(api)
    status, _, body = await api.post(
        "/api/campaigns",
        {
            "name": "Late news",
            "templateId": made["id"],
            "leadIds": [await lead(api, "Quiet Lead")],
            "sendFrom": "02:00",
            "sendUntil": "03:00",
        },
    )
    assert status == 201, body
    campaign_id = body["campaign"]["id"]
    assert (await api.post(f"/api/campaigns/{campaign_id}/start", {}))[0] == 200
    page = await pages.open(org)
    await live(page)
    await page.get_by_test_id("campaigns-open").click()
    campaign = campaign_row(page, campaign_id)
    await expect(campaign).to_have_attribute("data-status", "running")
    await page.context.set_offline(True)
    await campaign.get_by_test_id("campaign-pause").click()
    await expect(page.get_by_test_id("pending-count")).to_have_attribute("data-count", "1")
    await expect(campaign).to_have_attribute("data-pending", "1")
    await expect(campaign.get_by_test_id("campaign-cancel")).to_be_disabled()  # one press at a time for it
    assert (await api.post(f"/api/campaigns/{campaign_id}/cancel", {}))[0] == 200  # meanwhile, elsewhere
    await page.context.set_offline(False)
    await expect(page.get_by_test_id("pending-count")).to_have_attribute("data-count", "0")
    refused = page.locator('[data-testid="notice"][data-kind="error"]')
    await expect(refused).to_contain_text('"Late news" is cancelled: it can no longer be paused.')
    assert "409" not in await refused.inner_text()
    await expect(campaign).to_have_attribute("data-status", "cancelled")


async def test_an_audience_is_needed_and_a_status_can_be_one(pages: Pages, api: Api, org: str) -> None:
    made = await template(api)
    await lead(api, "Status Lead")
    page = await pages.open(org)
    await live(page)
    await page.get_by_test_id("campaigns-open").click()
    await page.get_by_test_id("campaign-name").fill("Everyone new")
    await page.get_by_test_id("campaign-template").select_option(made["id"])
    await page.get_by_test_id("campaign-create").click()  # nothing selected, no status
    await expect(page.locator('[data-testid="notice"][data-kind="error"]')).to_contain_text("has no audience")
    assert (await api.get("/api/campaigns"))[2]["campaigns"] == []
    await page.get_by_test_id("campaign-status-filter").select_option("new")
    await page.get_by_test_id("campaign-send-from").fill("09:30")
    await page.get_by_test_id("campaign-create").click()
    await expect(page.get_by_test_id("campaign-row")).to_have_count(1)
    [got] = (await api.get("/api/campaigns"))[2]["campaigns"]
    assert (got["audience"], got["send_from"], got["status"]) == ({"status": "new"}, "09:30:00", "draft")


async def test_the_campaigns_screenshot_and_a_narrow_one(pages: Pages, api: Api, org: str, sandbox: Sandbox) -> None:
    offer = await template(
        api, "Spring offer", "Hi {{first_name}}, 20% off every plan until Friday. Reply STOP to opt out."
    )
    reminder = await template(api, "Renewal reminder", "Hi {{first_name}}, your plan renews next week.")
    people = [await lead(api, name) for name in ("Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson")]

    async def campaign(name: str, tpl: dict, start: bool, **extra: object) -> str:
        status, _, body = await api.post("/api/campaigns", {"name": name, "templateId": tpl["id"], **extra})
        assert status == 201, body
        if start:
            assert (await api.post(f"/api/campaigns/{body['campaign']['id']}/start", {}))[0] == 200
        return body["campaign"]["id"]

    done = await campaign("Spring offer", offer, True, leadIds=people)
    await campaign("Renewals, night shift", reminder, True, leadIds=people[:3], sendFrom="02:00", sendUntil="03:00")
    await campaign("Qualified leads follow-up", reminder, False, status="qualified")
    page = await pages.open(org, viewport={"width": 1280, "height": 1000})
    await live(page)
    await row(page, people[0]).get_by_test_id("bulk-select").check()
    await row(page, people[1]).get_by_test_id("bulk-select").check()
    await page.get_by_test_id("campaigns-open").click()
    finished = campaign_row(page, done)
    await expect(finished).to_have_attribute("data-status", "completed")
    await finished.get_by_test_id("campaign-details").click()
    await expect(finished.locator('[data-testid="campaign-target"][data-state="sent"]')).to_have_count(4)
    await page.get_by_test_id("campaign-name").fill("Webinar invitation")
    await page.get_by_test_id("campaign-template").select_option(offer["id"])
    await page.screenshot(path=str(DOCS / "console-campaigns.png"))

    narrow = await pages.open(org, viewport={"width": 390, "height": 844})
    await narrow.get_by_test_id("campaigns-open").click()
    await expect(narrow.get_by_test_id("campaign-row")).to_have_count(3)
    await campaign_row(narrow, done).get_by_test_id("campaign-details").click()
    await expect(campaign_row(narrow, done).get_by_test_id("campaign-target")).to_have_count(4)
    scroll = await narrow.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll[0] <= scroll[1], f"horizontal scroll at 390 px: {scroll}"
    for testid in (
        "campaign-create",
        "campaign-template",
        "campaign-pause",
        "campaign-start",
        "campaign-progress",
        "campaigns-open",
    ):
        box = await narrow.get_by_test_id(testid).first.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (testid, box)
    await narrow.screenshot(path="/tmp/console-campaigns-390.png", full_page=True)


async def test_older_campaigns_are_read_a_page_at_a_time(pages: Pages, api: Api, org: str) -> None:
    made, audience = await template(api), [await lead(api, "Paged Lead")]
    ids = []
    for i in range(52):  # the console reads 50 at a time
        status, _, body = await api.post(
            "/api/campaigns", {"name": f"Campaign {i:02d}", "templateId": made["id"], "leadIds": audience}
        )
        assert status == 201, body
        ids.append(body["campaign"]["id"])
    page = await pages.open(org)
    await live(page)
    await page.get_by_test_id("campaigns-open").click()
    rows, more = page.get_by_test_id("campaign-row"), page.get_by_test_id("campaigns-more")
    await expect(rows).to_have_count(50)
    await expect(campaign_row(page, ids[-1])).to_have_count(1)  # newest first
    await expect(campaign_row(page, ids[0])).to_have_count(0)
    await more.click()
    await expect(rows).to_have_count(52)
    await expect(campaign_row(page, ids[0])).to_have_count(1)
    await expect(more).to_be_hidden()
    status, _, body = await api.post(
        "/api/campaigns", {"name": "Made elsewhere", "templateId": made["id"], "leadIds": audience}
    )
    assert status == 201, body
    await expect(campaign_row(page, body["campaign"]["id"])).to_have_count(1)  # shown live, on top
    await expect(rows).to_have_count(52)  # as many as were shown: the oldest is behind "Older campaigns" again
    await expect(more).to_be_visible()
