"""Appointments through HTTP and the broker: book, read, confirm."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import pytest

from tests.conftest import Api
from tests.support.broker import Probe
from tests.support.infra import Infra
from tests.support.stack import eventually


def soon(hours: float = 24) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


async def book(api: Api, lead_id: str, starts_at: str | None = None) -> dict:
    status, _, body = await api.post(
        "/api/appointments",
        {"leadId": lead_id, "startsAt": starts_at or soon(), "durationMinutes": 45, "title": "Demo call"},
    )
    assert status == 201, body
    return body["appointment"]


async def sql(infra: Infra, query: str, *args: object, method: str = "execute") -> object:
    """One statement on the test database, outside the services (setting up a case, or looking)."""
    conn = await asyncpg.connect(infra.database_url)
    try:
        return await getattr(conn, method)(query, *args)
    finally:
        await conn.close()


async def test_book_and_read_an_appointment(api: Api) -> None:
    lead = (await api.create_lead())["id"]
    appointment = await book(api, lead)
    assert (appointment["lead_id"], appointment["status"], appointment["duration_minutes"]) == (lead, "scheduled", 45)
    assert appointment["confirmed_at"] is None and appointment["title"] == "Demo call"
    status, _, got = await api.get(f"/api/appointments/{appointment['id']}")
    assert (status, got) == (200, {"appointment": appointment})
    status, _, listed = await api.get(f"/api/leads/{lead}/appointments")
    assert (status, listed) == (200, {"appointments": [appointment]})


async def test_a_lead_the_projection_has_not_heard_of_yet_is_still_found(api: Api, infra: Infra) -> None:
    lead = (await api.create_lead())["id"]
    # Make the projection lag: once its event arrived, forget the lead, as if it had not.
    await eventually(
        lambda: sql(infra, "SELECT count(*) FROM bookings.lead_directory WHERE lead_id = $1", lead, method="fetchval"),
        10,
        what="the lead to reach the bookings projection",
    )
    await sql(infra, "DELETE FROM bookings.lead_directory WHERE lead_id = $1", lead)
    appointment = await book(api, lead)
    assert appointment["lead_id"] == lead


async def test_unknown_or_foreign_leads_and_appointments_are_404(api: Api) -> None:
    stranger = api.as_user(f"other-{uuid4().hex[:6]}")
    their_lead = (await stranger.create_lead())["id"]
    their_appointment = await book(stranger, their_lead)
    for lead_id in (their_lead, str(uuid4()), "not-a-uuid"):
        status, _, body = await api.post("/api/appointments", {"leadId": lead_id, "startsAt": soon()})
        assert status == 404, body
        assert (await api.get(f"/api/leads/{lead_id}/appointments"))[0] == 404
    assert (await api.get(f"/api/appointments/{their_appointment['id']}"))[0] == 404
    status, _, body = await api.post("/api/bookings/confirm", {"appointmentId": their_appointment["id"]})
    assert status == 404, body
    status, _, body = await stranger.get(f"/api/appointments/{their_appointment['id']}")
    assert status == 200 and body["appointment"]["status"] == "scheduled"


@pytest.mark.parametrize(
    "body",
    [
        {"startsAt": "2030-01-01T10:00:00Z"},
        {"leadId": "x", "startsAt": "tomorrow"},
        {"leadId": "x", "startsAt": "2030-01-01T10:00:00"},  # no time zone
        {"leadId": "x", "startsAt": "2030-01-01T10:00:00Z", "durationMinutes": 0},
    ],
)
async def test_invalid_bookings_are_422(api: Api, body: dict) -> None:
    status, _, problem = await api.post("/api/appointments", body)
    assert status == 422, problem


async def test_confirm_then_confirm_again(api: Api, probe: Probe, org: str) -> None:
    appointment = await book(api, (await api.create_lead())["id"])
    status, _, body = await api.post("/api/bookings/confirm", {"appointmentId": appointment["id"], "notes": "ok"})
    assert status == 200
    confirmed = body["appointment"]
    assert (confirmed["id"], confirmed["status"]) == (appointment["id"], "confirmed") and confirmed["confirmed_at"]
    again = await api.post("/api/bookings/confirm", {"appointmentId": appointment["id"]})
    assert again[0] == 200 and again[2] == body
    await probe.barrier(org)
    (event,) = probe.events_of(org, "appointments.confirmed")
    assert event["data"]["appointmentId"] == appointment["id"]
    assert (event["data"]["leadId"], event["data"]["confirmedBy"], event["data"]["sendSms"]) == (
        appointment["lead_id"],
        "agent-1",
        False,
    )
    _, _, read = await api.get(f"/api/appointments/{appointment['id']}")
    assert read["appointment"]["notes"] == "ok" and read["appointment"]["confirmed_by"] == "agent-1"


@pytest.mark.parametrize("status_", ["cancelled", "completed", "no_show"])
async def test_confirming_a_closed_appointment_is_409_naming_its_status(api: Api, infra: Infra, status_: str) -> None:
    appointment = await book(api, (await api.create_lead())["id"])
    await sql(infra, "UPDATE bookings.appointments SET status = $2 WHERE id = $1", appointment["id"], status_)
    status, _, problem = await api.post("/api/bookings/confirm", {"appointmentId": appointment["id"]})
    assert status == 409 and status_ in problem["detail"]


async def test_confirming_an_appointment_in_the_past_is_409(api: Api) -> None:
    appointment = await book(api, (await api.create_lead())["id"], soon(hours=-1))
    status, _, problem = await api.post("/api/bookings/confirm", {"appointmentId": appointment["id"]})
    assert status == 409 and problem["type"] == "/problems/appointment-in-the-past"


async def test_confirm_replays_with_the_same_key(api: Api, probe: Probe, org: str) -> None:
    appointment = await book(api, (await api.create_lead())["id"])
    key = str(uuid4())
    first = await api.post("/api/bookings/confirm", {"appointmentId": appointment["id"]}, key=key)
    again = await api.post("/api/bookings/confirm", {"appointmentId": appointment["id"]}, key=key)
    assert first[0] == again[0] == 200 and first[2] == again[2]
    assert again[1]["Idempotent-Replayed"] == "true"
    await probe.barrier(org)
    assert len(probe.events_of(org, "appointments.confirmed")) == 1


async def test_confirm_straight_over_the_broker(api: Api, probe: Probe, org: str) -> None:
    appointment = await book(api, (await api.create_lead())["id"])
    message_id = uuid4().hex
    correlation_id = await probe.send(
        "bookings.confirm", {"appointmentId": appointment["id"], "sendSms": True}, org=org, message_id=message_id
    )
    await probe.send(
        "bookings.confirm",
        {"appointmentId": appointment["id"], "sendSms": True},
        org=org,
        message_id=message_id,
        correlation_id=correlation_id,
    )
    first, second = await probe.reply(correlation_id, count=2)
    assert first.status == second.status == 200 and first.body == second.body
    await probe.barrier(org)
    (event,) = probe.events_of(org, "appointments.confirmed")
    assert event["data"]["sendSms"] is True and event["command_id"] == message_id
