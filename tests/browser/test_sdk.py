"""The JavaScript SDK (clients/js, `crm-buttons`) on pages of another origin than the gateway's.

The example pages of clients/js/examples are served from EXAMPLE_ORIGIN (localhost, its own port); they
import /sdk/index.js and /sdk/elements.js from the running gateway (127.0.0.1), or, for React, a bundle
made by esbuild from npm (`make test` builds examples/dist). Through Debian's Chromium: the four elements
press, a refusal is shown, a press made offline is replayed once after its tab was closed and another
opened, events arrive live, after a dropped socket and after a reload, with no gap and none twice.
"""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from aiohttp import web
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.conftest import Pages, token_for
from tests.conftest import EXAMPLE_ORIGIN, Api
from tests.support.proxy import Proxy
from tests.support.stack import Stack, eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "clients/js/examples"


@pytest.fixture(scope="module")
async def example_site() -> AsyncIterator[str]:
    """clients/js/examples at EXAMPLE_ORIGIN: a static site that knows nothing of the gateway."""
    if not (EXAMPLES / "dist/react-app.js").exists():
        pytest.fail("clients/js/examples/dist/react-app.js is missing: `make test` builds it (npm run example)")
    app = web.Application()
    app.router.add_static("/", EXAMPLES)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "localhost", urlsplit(EXAMPLE_ORIGIN).port).start()
    yield EXAMPLE_ORIGIN
    await runner.cleanup()


async def history(api: Api, lead: str) -> list[str]:
    status, _, body = await api.get(f"/api/leads/{lead}/history")
    assert status == 200, body
    return [h["to"] for h in body["history"]]  # type: ignore[index]


async def appointment(api: Api, lead: str) -> str:
    starts = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat()
    status, _, body = await api.post("/api/appointments", {"leadId": lead, "startsAt": starts})
    assert status == 201, body
    return str(body["appointment"]["id"])  # type: ignore[index]


async def open_example(
    pages: Pages,
    site: str,
    gateway: str,
    org: str,
    page: str = "index.html",
    context: BrowserContext | None = None,
    **q: str,
) -> Page:
    opened = await (context or await pages.context()).new_page()
    opened.on("pageerror", lambda exc: pages.errors.append(str(exc)))
    await opened.goto(f"{site}/{page}?{urlencode({'gateway': gateway, 'token': token_for(org), **q})}")
    return opened


async def live(page: Page) -> None:
    await expect(page.locator("#state")).to_have_attribute("data-state", "live")


KEPT_POSITION = """() => new Promise((resolve, reject) => {
  const req = indexedDB.open("crm-buttons");
  req.onerror = () => reject(req.error);
  req.onsuccess = () => {
    const all = req.result.transaction("positions").objectStore("positions").getAll();
    all.onsuccess = () => { req.result.close(); resolve(Math.max(-1, ...all.result.map((p) => p.position))); };
  };
})"""


async def record_events(page: Page) -> None:
    await page.evaluate("""() => { window.seen = [];
      for (const name of ["crm-done", "crm-queued", "crm-refused"]) document.addEventListener(name, (e) =>
        window.seen.push({ name, tag: e.target.tagName.toLowerCase(), status: e.detail.status ?? null,
          type: (e.detail.problem && e.detail.problem.type) || null, key: e.detail.key || null })); }""")


async def test_the_four_elements_press_from_another_origin(
    pages: Pages, api: Api, org: str, stack: Stack, example_site: str
) -> None:
    lead, other = (await api.create_lead("Ada Element"))["id"], (await api.create_lead("Bob Element"))["id"]
    booked = await appointment(api, lead)
    new_lead = {"name": "Pressed Anyhow", "phone": "+14155550199"}
    page = await open_example(
        pages,
        example_site,
        stack.url,
        org,
        lead=lead,
        appointment=booked,
        leads=f"{lead},{other}",
        newLead=json.dumps(new_lead),
    )
    await live(page)
    await record_events(page)

    status = page.locator("crm-lead-status")
    await expect(status.locator("option")).not_to_have_count(1)  # the moves the rules allow, read from the gateway
    await status.locator("select").select_option("contacted")
    await expect(status).to_have_attribute("state", "done")
    await expect(status).to_have_attribute("current-status", "contacted")

    confirm = page.locator("crm-booking-confirm")
    await confirm.get_by_role("button").click()
    await expect(confirm).to_have_attribute("state", "done")

    sms = page.locator("crm-send-sms")
    await sms.get_by_role("button").click()
    await expect(sms).to_have_attribute("state", "done")

    bulk = page.locator("crm-lead-bulk-status")
    await expect(bulk.get_by_role("button")).to_have_text("Move 2 leads to lost")
    await bulk.get_by_role("button").click()
    await expect(bulk).to_have_attribute("state", "done")

    anything = page.locator("crm-press")  # any other button of the table
    await anything.get_by_role("button", name="Add a lead").click()
    await expect(anything).to_have_attribute("state", "done")

    assert await history(api, lead) == ["lost", "contacted"]  # newest first
    assert await history(api, other) == ["lost"]
    _, _, body = await api.get(f"/api/appointments/{booked}")
    assert body["appointment"]["status"] == "confirmed", body  # type: ignore[index]
    seen = await page.evaluate("window.seen")
    assert [(s["name"], s["tag"]) for s in seen] == [
        ("crm-done", "crm-lead-status"),
        ("crm-done", "crm-booking-confirm"),
        ("crm-done", "crm-send-sms"),
        ("crm-done", "crm-lead-bulk-status"),
        ("crm-done", "crm-press"),
    ], seen
    _, _, listed = await api.get("/api/leads?limit=200")
    assert [x["name"] for x in listed["leads"]].count(new_lead["name"]) == 1  # type: ignore[index]


async def test_a_refusal_is_shown_in_words_and_dispatched(
    pages: Pages, api: Api, org: str, stack: Stack, example_site: str
) -> None:
    lead = (await api.create_lead("Refused Element"))["id"]
    assert (await api.post("/api/leads/update-status", {"leadId": lead, "status": "won"}))[0] == 200  # final
    page = await open_example(pages, example_site, stack.url, org, leads=lead)
    await live(page)
    await record_events(page)
    bulk = page.locator("crm-lead-bulk-status")
    await bulk.get_by_role("button").click()
    await expect(bulk).to_have_attribute("state", "refused")
    await expect(bulk.get_by_role("status")).to_contain_text("refused")
    seen = await page.evaluate("window.seen")
    assert seen == [
        {
            "name": "crm-refused",
            "tag": "crm-lead-bulk-status",
            "status": 409,
            "type": "/problems/bulk-refused",
            "key": None,
        }
    ], seen
    assert await history(api, lead) == ["won"]


async def test_an_offline_press_is_replayed_once_after_its_tab_was_closed(
    pages: Pages, api: Api, org: str, stack: Stack, example_site: str
) -> None:
    lead = (await api.create_lead("Offline Element"))["id"]
    context = await pages.context()
    page = await open_example(pages, example_site, stack.url, org, context=context, lead=lead)
    await live(page)
    status = page.locator("crm-lead-status")
    await expect(status.locator("option")).not_to_have_count(1)
    await context.set_offline(True)
    await status.locator("select").select_option("contacted")
    await expect(status).to_have_attribute("state", "queued")
    await expect(page.locator("#pending")).to_have_attribute("data-count", "1")
    key = (await page.evaluate("crmClient.pending()"))[0]["key"]
    await page.close()  # the tab is closed with the press kept in IndexedDB
    assert await history(api, lead) == []

    await context.set_offline(False)
    sent: list[str] = []
    context.on("request", lambda r: r.method == "POST" and sent.append(r.headers.get("idempotency-key", "")))
    reopened = await open_example(pages, example_site, stack.url, org, context=context, lead=lead)
    await expect(reopened.locator("#pending")).to_have_attribute("data-count", "0")

    async def moved_once() -> bool:
        return await history(api, lead) == ["contacted"]

    await eventually(moved_once, 20, what="the kept press, replayed")
    assert sent == [key], sent  # replayed by itself, with its original key, once


async def test_events_arrive_live_after_a_dropped_socket_and_after_a_reload(
    pages: Pages, api: Api, org: str, stack: Stack, example_site: str
) -> None:
    leads = [(await api.create_lead(f"Live Element {i}"))["id"] for i in range(6)]
    proxy = Proxy(stack.port)
    await proxy.start()
    try:
        page = await open_example(pages, example_site, proxy.url, org, lead=leads[0], status="new")
        await live(page)
        events = page.locator("#events li[data-topic='leads.status_changed']")

        async def move(lead: str) -> None:
            assert (await api.post("/api/leads/update-status", {"leadId": lead, "status": "contacted"}))[0] == 200

        await move(leads[0])
        await expect(events).to_have_count(1)
        await expect(page.locator("crm-lead-status")).to_have_attribute("current-status", "contacted")

        await proxy.cut()  # the socket drops; two changes meanwhile
        await expect(page.locator("#state")).not_to_have_attribute("data-state", "live")
        await move(leads[1])
        await move(leads[2])
        await proxy.start()
        await live(page)
        await expect(events).to_have_count(3)

        last = int(await page.locator("#events li").last.get_attribute("data-position") or "0")

        async def position_kept() -> bool:  # written after each event; a tab closed before that replays it
            return int(await page.evaluate(KEPT_POSITION)) >= last

        await eventually(position_kept, 10, what="the position kept in IndexedDB")
        await page.close()  # closed, a change, then opened again: resumed from the position kept in IndexedDB
        await move(leads[3])
        page = await open_example(pages, example_site, proxy.url, org, context=page.context)
        await live(page)
        await expect(page.locator("#events li[data-topic='leads.status_changed']")).to_have_count(1)
        await move(leads[4])
        await expect(page.locator("#events li[data-topic='leads.status_changed']")).to_have_count(2)
        got = await page.eval_on_selector_all("#events li", "els => els.map((e) => [e.dataset.topic, e.dataset.id])")
        ids = [i for topic, i in got if topic == "leads.status_changed"]
        assert len(ids) == len(set(ids)) == 2, got
        assert await page.evaluate("document.body.dataset.reloads") is None  # recovered: no reload was asked
    finally:
        await proxy.close()


async def test_the_react_wrappers_render_and_press(
    pages: Pages, api: Api, org: str, stack: Stack, example_site: str
) -> None:
    lead = (await api.create_lead("React Element"))["id"]
    booked = await appointment(api, lead)
    page = await open_example(
        pages, example_site, stack.url, org, page="react.html", lead=lead, appointment=booked, leads=lead
    )
    await expect(page.get_by_test_id("state")).to_have_text("live")
    for tag in ("crm-booking-confirm", "crm-send-sms", "crm-lead-status", "crm-lead-bulk-status"):
        await expect(page.locator(tag)).to_have_count(1)
    await expect(page.locator("crm-send-sms")).to_have_attribute("lead-id", lead)
    await expect(page.locator("crm-lead-bulk-status")).to_have_attribute("lead-ids", lead)
    status = page.locator("crm-lead-status")
    await expect(status.locator("option")).not_to_have_count(1)
    await status.locator("select").select_option("contacted")
    await expect(page.get_by_test_id("said")).to_have_text("moved to contacted")
    await page.locator("crm-booking-confirm").get_by_role("button").click()
    await expect(page.get_by_test_id("said")).to_have_text("confirmed")
    await expect(page.get_by_test_id("events").locator("li", has_text="leads.status_changed")).to_have_count(1)
    assert await history(api, lead) == ["contacted"]
    assert json.loads(json.dumps(await page.evaluate("crmClient.scope"))).endswith(f"\n{org}\nagent-1")
