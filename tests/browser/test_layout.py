"""The main screen: a screenshot for the README (docs/console.png), and usable at 390 px wide."""

from datetime import UTC, datetime, timedelta

from playwright.async_api import expect

from tests.browser.conftest import Pages, live, row, screenshots_dir
from tests.conftest import Api

DOCS = screenshots_dir()  # docs/ only with UPDATE_SCREENSHOTS=1
PEOPLE = [
    ("Ada Lovelace", "qualified"),
    ("Grace Hopper", "contacted"),
    ("Alan Turing", "new"),
    ("Katherine Johnson", "proposal"),
    ("Edsger Dijkstra", "won"),
    ("Barbara Liskov", "lost"),
]


async def seed(api: Api) -> list[str]:
    ids = []
    for i, (name, status) in enumerate(PEOPLE):
        lead = (await api.create_lead(name, f"+1415555{i:04d}"))["id"]
        if status != "new":
            assert (await api.post("/api/leads/update-status", {"leadId": lead, "status": status}))[0] == 200
        ids.append(lead)
    starts = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0).isoformat()
    assert (await api.post("/api/appointments", {"leadId": ids[0], "startsAt": starts, "title": "Intro call"}))[
        0
    ] == 201
    return ids


async def test_the_main_screen_and_a_narrow_one(pages: Pages, api: Api, org: str) -> None:
    ids = await seed(api)
    page = await pages.open(org)
    await live(page)
    await row(page, ids[0]).get_by_role("button", name="open Ada Lovelace").click()
    await expect(page.get_by_test_id("appointment-confirm")).to_be_visible()
    await row(page, ids[1]).get_by_test_id("bulk-select").check()
    await row(page, ids[2]).get_by_test_id("bulk-select").check()
    await page.get_by_test_id("bulk-status").select_option("lost")
    await page.get_by_test_id("sms-message").fill("Hi Ada, see you tomorrow at 10!")
    await page.screenshot(path=str(DOCS / "console.png"))

    narrow = await pages.open(org, viewport={"width": 390, "height": 844})
    await expect(row(narrow, ids[-1])).to_be_visible()
    await row(narrow, ids[0]).get_by_role("button", name="open Ada Lovelace").click()
    scroll = await narrow.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll[0] <= scroll[1], f"horizontal scroll at 390 px: {scroll}"
    for lead in ids[:4]:  # every control is on screen
        box = await row(narrow, lead).get_by_test_id("status-control").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    await narrow.screenshot(path="/tmp/console-390.png", full_page=True)
