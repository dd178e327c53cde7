"""Live: changes made anywhere appear without a reload; after a dropped websocket nothing is missed."""

import json
from datetime import UTC, datetime

import aio_pika
from playwright.async_api import expect

from shared.contracts.envelope import Event
from tests.browser.conftest import Pages, live, row
from tests.conftest import Api
from tests.support.proxy import Proxy
from tests.support.stack import Stack


async def test_two_pages_see_each_other_s_changes(pages: Pages, api: Api, org: str) -> None:
    lead = (await api.create_lead("Shared Lead"))["id"]
    first, second = await pages.open(org), await pages.open(org)
    await live(first)
    await live(second)
    await row(first, lead).get_by_test_id("status-control").select_option("contacted")
    await expect(row(second, lead)).to_have_attribute("data-status", "contacted")
    await row(second, lead).get_by_test_id("status-control").select_option("lost")
    await expect(row(first, lead)).to_have_attribute("data-status", "lost")
    created = await api.create_lead("Made Elsewhere")
    for page in (first, second):
        await expect(row(page, created["id"])).to_have_attribute("data-status", "new")


async def test_a_change_published_straight_to_the_broker_appears(
    pages: Pages, api: Api, org: str, amqp: aio_pika.abc.AbstractChannel
) -> None:
    lead = (await api.create_lead("From Another System"))["id"]
    page = await pages.open(org)
    await live(page)
    await expect(row(page, lead)).to_have_attribute("data-status", "new")
    event = Event(
        type="leads.status_changed",
        org_id=org,
        data={
            "leadId": lead,
            "from": "new",
            "to": "qualified",
            "changedAt": datetime.now(UTC).isoformat(),
            "by": "crm-sync",
        },
    )
    exchange = await amqp.get_exchange("events")
    await exchange.publish(
        aio_pika.Message(event.model_dump_json().encode(), message_id=str(event.id), content_type="application/json"),
        routing_key=event.type,
    )
    await expect(row(page, lead)).to_have_attribute("data-status", "qualified")


async def test_a_websocket_dropped_while_20_changes_are_made_misses_none(
    pages: Pages, api: Api, org: str, stack: Stack
) -> None:
    ids = [(await api.create_lead(f"Gap {i}"))["id"] for i in range(20)]
    proxy = Proxy(stack.port)
    await proxy.start()
    try:
        page = await pages.open(org, url=proxy.url)
        await live(page)
        await expect(row(page, ids[-1])).to_have_attribute("data-status", "new")
        await proxy.cut()
        await expect(page.get_by_test_id("connection-state")).not_to_have_attribute("data-state", "live")
        for lead in ids:
            assert (await api.post("/api/leads/update-status", {"leadId": lead, "status": "contacted"}))[0] == 200
        await proxy.start()
        await live(page)
        for lead in ids:
            await expect(row(page, lead)).to_have_attribute("data-status", "contacted")
        applied = await page.evaluate("crmConsole.applied")
        ours = [a for a in applied if a["topic"] == "leads.status_changed" and a["leadId"] in ids]
        ids_applied = [a["id"] for a in applied if a["id"]]
        assert len(ids_applied) == len(set(ids_applied)), "an event was applied twice"
        welcomes = await page.evaluate("crmConsole.welcomes")
        assert len(welcomes) >= 2
        assert welcomes[-1]["recovered"], f"the reconnect was not recovered: {json.dumps(welcomes)}"
        # resumed: the 20 came as events, once each, in position order
        assert sorted(a["leadId"] for a in ours) == sorted(ids)
        positions = [a["position"] for a in ours]
        assert positions == sorted(positions)
    finally:
        await proxy.close()
