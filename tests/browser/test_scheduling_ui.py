"""The appointments of the lead panel: book, reschedule (clashes said as a warning), cancel, complete, no-show.

Each press is checked through the API; the rows change live. The pages run in UTC, so that the
datetime-local values typed here mean the instants computed here.
"""

from datetime import UTC, datetime, timedelta

from playwright.async_api import Page, expect

from tests.browser.conftest import Pages, live, row
from tests.conftest import Api
from tests.e2e.test_bookings import sql
from tests.support.infra import Infra

UTC_PAGE = {"timezone_id": "UTC"}


def later(days: int = 2, hour: int = 10) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)


async def book(api: Api, lead: str, starts: datetime, minutes: int = 30, title: str = "Call") -> str:
    status, _, body = await api.post(
        "/api/appointments",
        {"leadId": lead, "startsAt": starts.isoformat(), "durationMinutes": minutes, "title": title},
    )
    assert status == 201, body
    return body["appointment"]["id"]


async def appointment(api: Api, appointment_id: str) -> dict:
    status, _, body = await api.get(f"/api/appointments/{appointment_id}")
    assert status == 200, body
    return body["appointment"]


def appointment_row(page: Page, appointment_id: str):  # type: ignore[no-untyped-def]
    return page.locator(f'[data-testid="appointment-row"][data-appointment-id="{appointment_id}"]')


async def open_lead(page: Page, lead: str, name: str) -> None:
    await row(page, lead).get_by_role("button", name=f"open {name}").click()


async def test_book_then_reschedule_onto_another_says_the_clash(pages: Pages, api: Api, org: str) -> None:
    lead = (await api.create_lead("Clash Lead"))["id"]
    other = await book(api, lead, later(hour=15), minutes=60, title="Demo")
    page = await pages.open(org, **UTC_PAGE)
    await live(page)
    await open_lead(page, lead, "Clash Lead")
    await expect(appointment_row(page, other)).to_have_attribute("data-status", "scheduled")

    await page.get_by_test_id("appointment-book-at").fill(later(hour=10).strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_test_id("appointment-book").click()
    await expect(page.get_by_test_id("appointment-row")).to_have_count(2)  # live, from appointments.created
    _, _, listed = await api.get(f"/api/leads/{lead}/appointments")
    booked = next(a["id"] for a in listed["appointments"] if a["id"] != other)
    assert datetime.fromisoformat((await appointment(api, booked))["starts_at"]) == later(hour=10)

    target = later(hour=15) + timedelta(minutes=30)  # in the middle of the other one
    rescheduled = appointment_row(page, booked)
    await rescheduled.get_by_test_id("appointment-reschedule-at").fill(target.strftime("%Y-%m-%dT%H:%M"))
    await rescheduled.get_by_test_id("appointment-reschedule").click()
    warning = page.locator('[data-testid="notice"][data-kind="warning"]')
    await expect(warning).to_contain_text("overlaps another appointment")
    await expect(warning).to_contain_text("60 min")
    assert datetime.fromisoformat((await appointment(api, booked))["starts_at"]) == target
    await expect(rescheduled.get_by_test_id("appointment-reschedule-at")).to_have_value(
        target.strftime("%Y-%m-%dT%H:%M")
    )


async def test_cancel_needs_a_reason_then_cancels(pages: Pages, api: Api, org: str) -> None:
    lead = (await api.create_lead("Cancel Lead"))["id"]
    booked = await book(api, lead, later())
    page = await pages.open(org, **UTC_PAGE)
    await open_lead(page, lead, "Cancel Lead")
    cancelled = appointment_row(page, booked)
    await cancelled.get_by_test_id("appointment-cancel").click()  # no reason: said, and nothing is sent
    await expect(page.locator('[data-testid="notice"][data-kind="error"]')).to_contain_text("Say why")
    await expect(page.get_by_test_id("pending-count")).to_have_attribute("data-count", "0")
    await cancelled.get_by_test_id("appointment-cancel-reason").fill("Lead asked to postpone")
    await cancelled.get_by_test_id("appointment-cancel").click()
    await expect(cancelled).to_have_attribute("data-status", "cancelled")
    got = await appointment(api, booked)
    assert (got["status"], got["cancel_reason"]) == ("cancelled", "Lead asked to postpone")
    await expect(cancelled.get_by_test_id("appointment-reschedule")).to_have_count(0)  # closed: no more moves


async def test_complete_and_no_show_once_the_time_has_come(pages: Pages, api: Api, org: str, infra: Infra) -> None:
    lead = (await api.create_lead("Past Lead"))["id"]
    done, missed, future = [await book(api, lead, later(hour=h)) for h in (9, 11, 13)]
    for past in (done, missed):  # booking refuses the past: move them back, as if time had passed
        await sql(infra, "UPDATE bookings.appointments SET starts_at = now() - interval '2 hours' WHERE id = $1", past)
    page = await pages.open(org, **UTC_PAGE)
    await live(page)
    await open_lead(page, lead, "Past Lead")
    await expect(appointment_row(page, future).get_by_test_id("appointment-complete")).to_be_disabled()
    await expect(appointment_row(page, done).get_by_test_id("appointment-reschedule")).to_be_disabled()
    await appointment_row(page, done).get_by_test_id("appointment-complete").click()
    await appointment_row(page, missed).get_by_test_id("appointment-no-show").click()
    await expect(appointment_row(page, done)).to_have_attribute("data-status", "completed")
    await expect(appointment_row(page, missed)).to_have_attribute("data-status", "no_show")
    statuses = [(await appointment(api, a))["status"] for a in (done, missed, future)]
    assert statuses == ["completed", "no_show", "scheduled"]
