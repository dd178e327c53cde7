"""The deals of the lead panel: proposals, payments and contracts pressed from the page, checked through the API.

Also: a refusal said in words, a payment pressed offline recorded once, the panel usable at 390 px,
and the README's screenshot of the panel (docs/console-deals.png).
"""

from datetime import UTC, datetime, timedelta

from playwright.async_api import Page, expect

from tests.browser.conftest import Pages, live, row, screenshots_dir
from tests.conftest import Api

DOCS = screenshots_dir()  # docs/ only with UPDATE_SCREENSHOTS=1


async def send_proposal(
    api: Api, lead: str, title: str = "Website redesign", amount_minor: int = 123450, accept: bool = True
) -> dict:
    valid = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    status, _, body = await api.post(
        "/api/proposals",
        {"leadId": lead, "title": title, "amountMinor": amount_minor, "currency": "USD", "validUntil": valid},
    )
    assert status == 201, body
    if accept:
        status, _, body = await api.post("/api/proposals/accept", {"proposalId": body["proposal"]["id"]})
        assert status == 200, body
    return body["proposal"]


async def detail(api: Api, proposal_id: str) -> dict:
    status, _, body = await api.get(f"/api/proposals/{proposal_id}")
    assert status == 200, body
    return body


def proposal_row(page: Page, proposal_id: str):  # type: ignore[no-untyped-def]
    return page.locator(f'[data-testid="proposal-row"][data-proposal-id="{proposal_id}"]')


async def open_lead(page: Page, lead: str, name: str) -> None:
    await row(page, lead).get_by_role("button", name=f"open {name}").click()


async def test_send_a_proposal_then_accept_it_and_the_lead_is_won_live(pages: Pages, api: Api, org: str) -> None:
    lead = (await api.create_lead("Deal Lead"))["id"]
    page = await pages.open(org)
    await live(page)
    await open_lead(page, lead, "Deal Lead")
    await page.get_by_test_id("proposal-title").fill("Website redesign")
    await page.get_by_test_id("proposal-amount").fill("1,234.50")
    await page.get_by_test_id("proposal-currency").fill("eur")
    await page.get_by_test_id("proposal-send").click()
    sent = page.get_by_test_id("proposal-row")
    await expect(sent).to_have_attribute("data-status", "sent")
    _, _, listed = await api.get(f"/api/leads/{lead}/proposals")
    [proposal] = listed["proposals"]
    assert (proposal["title"], proposal["amount_minor"], proposal["currency"]) == ("Website redesign", 123450, "EUR")
    await expect(sent.get_by_test_id("proposal-amount-shown")).to_have_text("€1,234.50")
    await expect(row(page, lead)).to_have_attribute("data-status", "proposal")  # moved by the leads service, live

    await sent.get_by_test_id("proposal-accept").click()
    await expect(sent).to_have_attribute("data-status", "accepted")
    await expect(row(page, lead)).to_have_attribute("data-status", "won")
    assert (await detail(api, proposal["id"]))["proposal"]["status"] == "accepted"
    await expect(page.get_by_test_id("timeline-entry")).to_have_count(2)


async def test_record_a_payment_then_refund_and_an_overpayment_is_refused(pages: Pages, api: Api, org: str) -> None:
    lead = (await api.create_lead("Paying Lead"))["id"]
    proposal = await send_proposal(api, lead)
    page = await pages.open(org)
    await live(page)
    await open_lead(page, lead, "Paying Lead")
    deal = proposal_row(page, proposal["id"])
    await expect(deal).to_have_attribute("data-status", "accepted")
    await deal.get_by_test_id("payment-amount").fill("200.25")
    await deal.get_by_test_id("payment-record").click()
    await expect(deal).to_have_attribute("data-balance-minor", str(123450 - 20025))
    await expect(deal.get_by_test_id("payment-row")).to_have_count(1)
    got = await detail(api, proposal["id"])
    assert [p["amount_minor"] for p in got["payments"]] == [20025] and got["proposal"]["balance_minor"] == 103425

    await deal.get_by_test_id("payment-amount").fill("5000")  # more than the balance
    await deal.get_by_test_id("payment-record").click()
    refused = page.locator('[data-testid="notice"][data-kind="error"]')
    await expect(refused).to_contain_text("more than the balance")
    await expect(refused).to_contain_text("$1,034.25")
    assert "409" not in await refused.inner_text()
    assert len((await detail(api, proposal["id"]))["payments"]) == 1

    payment = deal.get_by_test_id("payment-row")
    await payment.get_by_test_id("payment-refund-amount").fill("0.25")
    await payment.get_by_test_id("payment-refund").click()
    await expect(deal).to_have_attribute("data-balance-minor", str(103425 + 25))
    assert (await detail(api, proposal["id"]))["proposal"]["balance_minor"] == 103450


async def test_create_send_and_sign_a_contract(pages: Pages, api: Api, org: str) -> None:
    lead = (await api.create_lead("Contract Lead"))["id"]
    proposal = await send_proposal(api, lead, "Support plan", 50000)
    page = await pages.open(org)
    await live(page)
    await open_lead(page, lead, "Contract Lead")
    deal = proposal_row(page, proposal["id"])
    await deal.get_by_test_id("contract-create").click()
    contract = deal.get_by_test_id("contract-row")
    await expect(contract).to_have_attribute("data-status", "draft")
    await expect(deal.get_by_test_id("contract-create")).to_have_count(0)  # one open contract per proposal
    await contract.get_by_test_id("contract-send").click()
    await expect(contract).to_have_attribute("data-status", "sent")
    await contract.get_by_test_id("contract-signer").fill("Ada Lovelace")
    await contract.get_by_test_id("contract-sign").click()
    await expect(contract).to_have_attribute("data-status", "signed")
    await expect(contract.get_by_test_id("contract-void")).to_have_count(0)  # signed is final
    [made] = (await detail(api, proposal["id"]))["contracts"]
    assert (made["status"], made["signer_name"], made["terms"]["amount_minor"]) == ("signed", "Ada Lovelace", 50000)
    await expect(page.get_by_test_id("timeline-entry")).to_have_count(5)  # sent, accepted, created, sent, signed


async def test_a_payment_pressed_offline_is_recorded_once_when_back(pages: Pages, api: Api, org: str) -> None:
    lead = (await api.create_lead("Offline Payer"))["id"]
    proposal = await send_proposal(api, lead, amount_minor=10000)
    page = await pages.open(org)
    await live(page)
    await page.wait_for_function("navigator.serviceWorker.controller !== null")  # the page opens offline too
    await open_lead(page, lead, "Offline Payer")
    deal = proposal_row(page, proposal["id"])
    await expect(deal).to_have_attribute("data-status", "accepted")
    await page.context.set_offline(True)
    await deal.get_by_test_id("payment-amount").fill("40")
    await deal.get_by_test_id("payment-record").click()
    await expect(page.get_by_test_id("pending-count")).to_have_attribute("data-count", "1")
    await expect(deal.get_by_test_id("payment-record")).to_be_disabled()  # waits for its answer: no second press
    await page.reload()  # only IndexedDB remembers the press
    await expect(page.get_by_test_id("pending-count")).to_have_attribute("data-count", "1")
    assert (await detail(api, proposal["id"]))["payments"] == []
    await page.context.set_offline(False)
    await expect(page.get_by_test_id("pending-count")).to_have_attribute("data-count", "0")
    got = await detail(api, proposal["id"])
    assert [p["amount_minor"] for p in got["payments"]] == [4000] and got["proposal"]["balance_minor"] == 6000
    await open_lead(page, lead, "Offline Payer")
    await expect(proposal_row(page, proposal["id"])).to_have_attribute("data-balance-minor", "6000")


async def test_the_lead_panel_screenshot_and_a_narrow_one(pages: Pages, api: Api, org: str) -> None:
    lead = (await api.create_lead("Ada Lovelace", "+14155550100"))["id"]
    starts = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    booked = {"leadId": lead, "startsAt": starts.isoformat(), "title": "Intro call"}
    assert (await api.post("/api/appointments", booked))[0] == 201
    won = await send_proposal(api, lead, "Website redesign", 1250000)
    status, _, paid = await api.post(
        "/api/payments",
        {
            "proposalId": won["id"],
            "amountMinor": 500000,
            "currency": "USD",
            "method": "bank_transfer",
            "externalReference": "INV-2041",
        },
    )
    assert status == 201, paid
    status, _, made = await api.post("/api/contracts", {"proposalId": won["id"]})
    assert status == 201, made
    assert (await api.post("/api/contracts/send", {"contractId": made["contract"]["id"]}))[0] == 200
    await send_proposal(api, lead, "Maintenance, first year", 240000, accept=False)

    page = await pages.open(org, viewport={"width": 1280, "height": 2000})
    await live(page)
    await open_lead(page, lead, "Ada Lovelace")
    await expect(page.get_by_test_id("contract-row")).to_have_attribute("data-status", "sent")
    await expect(page.get_by_test_id("proposal-row")).to_have_count(2)
    await page.get_by_test_id("proposal-amount").fill("2400.00")
    await page.locator("#lead-panel").screenshot(path=str(DOCS / "console-deals.png"))

    narrow = await pages.open(org, viewport={"width": 390, "height": 844})
    await open_lead(narrow, lead, "Ada Lovelace")
    await expect(narrow.get_by_test_id("contract-row")).to_have_attribute("data-status", "sent")
    scroll = await narrow.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll[0] <= scroll[1], f"horizontal scroll at 390 px: {scroll}"
    for testid in (
        "payment-record",
        "contract-sign",
        "proposal-accept",
        "appointment-reschedule",
        "proposal-send",
        "appointment-book",
    ):
        box = await narrow.get_by_test_id(testid).first.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (testid, box)
    await narrow.locator("#lead-panel").screenshot(path="/tmp/console-deals-390.png")
