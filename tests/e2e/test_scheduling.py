"""The scheduling buttons through HTTP and the broker: reschedule, cancel, complete, no-show."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import asyncpg
import pytest

from tests.conftest import Api
from tests.e2e.test_bookings import book, soon, sql
from tests.support.broker import Probe
from tests.support.infra import Infra
from tests.support.stack import Stack, eventually

# button -> (path, routing key, event type, status it leaves the appointment in)
BUTTONS = {
    "reschedule": ("/api/bookings/reschedule", "bookings.reschedule", "appointments.rescheduled", "scheduled"),
    "cancel": ("/api/bookings/cancel", "bookings.cancel", "appointments.cancelled", "cancelled"),
    "complete": ("/api/bookings/complete", "bookings.complete", "appointments.completed", "completed"),
    "no_show": ("/api/bookings/no-show", "bookings.no_show", "appointments.no_show", "no_show"),
}
CLOSING = ["complete", "no_show"]


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def move_to_the_past(infra: Infra, appointment_id: str, hours: float = 1) -> None:
    """Its time has come: book in the future (the only way in), then move it back behind the service."""
    await sql(
        infra,
        "UPDATE bookings.appointments SET starts_at = now() - make_interval(secs => $2) WHERE id = $1",
        appointment_id,
        hours * 3600,
    )


async def ready_for(api: Api, infra: Infra, button: str) -> tuple[dict, dict]:
    """An appointment the button can change, and the body that changes it."""
    appointment = await book(api, (await api.create_lead())["id"])
    body: dict = {"appointmentId": appointment["id"]}
    if button == "reschedule":
        body |= {"startsAt": soon(48), "reason": "lead asked"}
    elif button == "cancel":
        body |= {"reason": "lead asked"}
    else:
        await move_to_the_past(infra, appointment["id"])
        appointment = await read(api, appointment["id"])
        body |= {"notes": "went well"}
    return appointment, body


async def read(api: Api, appointment_id: str) -> dict:
    status, _, body = await api.get(f"/api/appointments/{appointment_id}")
    assert status == 200, body
    return body["appointment"]


async def press(api: Api, button: str, body: dict, status: int = 200, **kw: object) -> dict:
    got, _, answer = await api.post(BUTTONS[button][0], body, **kw)
    assert got == status, answer
    return answer


@asynccontextmanager
async def appointment_locked(infra: Infra, appointment_id: str) -> AsyncIterator[None]:
    """Hold the row: the service's own SELECT … FOR UPDATE runs into its lock timeout (a transient failure)."""
    conn = await asyncpg.connect(infra.database_url)
    try:
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM bookings.appointments WHERE id = $1 FOR UPDATE", appointment_id)
            yield
    finally:
        await conn.close()


# Reschedule ----------------------------------------------------------------------
async def test_reschedule_a_confirmed_appointment_back_to_scheduled(api: Api, probe: Probe, org: str) -> None:
    appointment = await book(api, (await api.create_lead())["id"])
    status, _, _ = await api.post("/api/bookings/confirm", {"appointmentId": appointment["id"]})
    assert status == 200
    new_start = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    answer = await press(
        api,
        "reschedule",
        {
            "appointmentId": appointment["id"],
            "startsAt": new_start.isoformat(),
            "durationMinutes": 60,
            "reason": "lead is travelling",
        },
    )
    moved = answer["appointment"]
    assert (moved["status"], moved["confirmed_at"], moved["confirmed_by"]) == ("scheduled", None, None)
    assert (at(moved["starts_at"]), moved["duration_minutes"]) == (new_start, 60)
    assert answer["clashes"] == []
    assert await read(api, appointment["id"]) == moved
    await probe.barrier(org)
    (event,) = probe.events_of(org, "appointments.rescheduled")
    data = event["data"]
    assert (data["appointmentId"], data["leadId"], data["durationMinutes"], data["reason"], data["by"]) == (
        appointment["id"],
        appointment["lead_id"],
        60,
        "lead is travelling",
        "agent-1",
    )
    assert (at(data["previousStartsAt"]), at(data["startsAt"])) == (at(appointment["starts_at"]), new_start)
    # The new time must be confirmed again.
    status, _, confirmed = await api.post("/api/bookings/confirm", {"appointmentId": appointment["id"]})
    assert status == 200 and confirmed["appointment"]["status"] == "confirmed"


async def test_reschedule_to_the_same_time_changes_nothing(api: Api, probe: Probe, org: str) -> None:
    appointment = await book(api, (await api.create_lead())["id"])
    await api.post("/api/bookings/confirm", {"appointmentId": appointment["id"]})
    confirmed = await read(api, appointment["id"])
    # The same instant in another time zone, with and without the same duration.
    same = at(appointment["starts_at"]).astimezone(timezone(timedelta(hours=-5))).isoformat()
    for body in ({"startsAt": same}, {"startsAt": appointment["starts_at"], "durationMinutes": 45}):
        answer = await press(api, "reschedule", {"appointmentId": appointment["id"], **body})
        assert answer == {"appointment": confirmed, "clashes": []}
    await probe.barrier(org)
    assert probe.events_of(org, "appointments.rescheduled") == []
    assert await read(api, appointment["id"]) == confirmed


async def test_reschedule_reports_the_leads_other_open_appointments_it_overlaps(api: Api) -> None:
    lead = (await api.create_lead())["id"]
    base = (datetime.now(UTC) + timedelta(days=5)).replace(hour=10, minute=0, second=0, microsecond=0)

    async def booked(minutes: int, lead_id: str = lead) -> dict:  # 45 minutes long, `minutes` after base
        return await book(api, lead_id, (base + timedelta(minutes=minutes)).isoformat())

    early, late, confirmed, cancelled, adjacent = (
        await booked(0),
        await booked(60),
        await booked(70),
        await booked(30),
        await booked(-15),
    )
    await api.post("/api/bookings/confirm", {"appointmentId": confirmed["id"]})
    await press(api, "cancel", {"appointmentId": cancelled["id"], "reason": "moved"})
    await booked(30, (await api.create_lead())["id"])  # another lead's: never a clash
    moving = await booked(24 * 60)
    # To [10:30, 11:15): overlaps early [10:00, 10:45), late [11:00, 11:45) and the confirmed [11:10, 11:55);
    # not the one that ends at 10:30, nor the cancelled one, nor another lead's, nor itself.
    answer = await press(
        api, "reschedule", {"appointmentId": moving["id"], "startsAt": (base + timedelta(minutes=30)).isoformat()}
    )
    clashes = answer["clashes"]
    assert [c["id"] for c in clashes] == [early["id"], late["id"], confirmed["id"]]
    assert [c["status"] for c in clashes] == ["scheduled", "scheduled", "confirmed"]
    assert (at(clashes[0]["starts_at"]), clashes[0]["duration_minutes"]) == (base, 45)
    assert adjacent["id"] not in [c["id"] for c in clashes]
    assert answer["appointment"]["status"] == "scheduled"  # reported, not refused


@pytest.mark.parametrize("closed", ["cancelled", "completed", "no_show"])
async def test_a_closed_appointment_cannot_be_rescheduled(api: Api, infra: Infra, closed: str) -> None:
    appointment = await book(api, (await api.create_lead())["id"])
    await sql(infra, "UPDATE bookings.appointments SET status = $2 WHERE id = $1", appointment["id"], closed)
    problem = await press(api, "reschedule", {"appointmentId": appointment["id"], "startsAt": soon(48)}, 409)
    assert (problem["type"], problem["currentStatus"]) == ("/problems/appointment-closed", closed)


async def test_an_appointment_that_has_started_cannot_be_rescheduled(api: Api) -> None:
    appointment = await book(api, (await api.create_lead())["id"], soon(hours=-0.5))
    problem = await press(api, "reschedule", {"appointmentId": appointment["id"], "startsAt": soon(48)}, 409)
    assert problem["type"] == "/problems/appointment-in-the-past"
    assert (await read(api, appointment["id"]))["starts_at"] == appointment["starts_at"]


@pytest.mark.parametrize(
    "body",
    [
        {"startsAt": "2001-01-01T10:00:00Z"},  # in the past
        {"startsAt": "2030-01-01T10:00:00"},  # no time zone
        {"startsAt": "2030-01-01T10:00:00Z", "durationMinutes": 4},
        {},
    ],
)
async def test_invalid_reschedules_are_422(api: Api, body: dict) -> None:
    appointment = await book(api, (await api.create_lead())["id"])
    problem = await press(api, "reschedule", {"appointmentId": appointment["id"], **body}, 422)
    assert problem["type"] == "/problems/validation"
    assert await read(api, appointment["id"]) == appointment


# Cancel --------------------------------------------------------------------------
async def test_cancel_then_cancel_again(api: Api, probe: Probe, org: str) -> None:
    appointment = await book(api, (await api.create_lead())["id"])
    before = datetime.now(UTC)
    answer = await press(api, "cancel", {"appointmentId": appointment["id"], "reason": "  lead went quiet "})
    cancelled = answer["appointment"]
    assert (cancelled["status"], cancelled["cancel_reason"], cancelled["closed_by"]) == (
        "cancelled",
        "lead went quiet",
        "agent-1",
    )
    assert before <= at(cancelled["closed_at"]) <= datetime.now(UTC)
    assert await press(api, "cancel", {"appointmentId": appointment["id"], "reason": "again"}) == answer
    assert await read(api, appointment["id"]) == cancelled
    await probe.barrier(org)
    (event,) = probe.events_of(org, "appointments.cancelled")
    data = event["data"]
    assert (data["appointmentId"], data["leadId"], data["reason"], data["by"]) == (
        appointment["id"],
        appointment["lead_id"],
        "lead went quiet",
        "agent-1",
    )
    assert at(data["cancelledAt"]) == at(cancelled["closed_at"])


async def test_a_started_appointment_can_still_be_cancelled(api: Api) -> None:
    appointment = await book(api, (await api.create_lead())["id"], soon(hours=-0.5))
    answer = await press(api, "cancel", {"appointmentId": appointment["id"], "reason": "never happened"})
    assert answer["appointment"]["status"] == "cancelled"


@pytest.mark.parametrize("closed", ["completed", "no_show"])
async def test_a_completed_or_no_show_appointment_cannot_be_cancelled(api: Api, infra: Infra, closed: str) -> None:
    appointment = await book(api, (await api.create_lead())["id"])
    await move_to_the_past(infra, appointment["id"])
    await press(api, "complete" if closed == "completed" else "no_show", {"appointmentId": appointment["id"]})
    problem = await press(api, "cancel", {"appointmentId": appointment["id"], "reason": "oops"}, 409)
    assert (problem["type"], problem["currentStatus"]) == ("/problems/appointment-closed", closed)
    assert (await read(api, appointment["id"]))["status"] == closed


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 201}])
async def test_a_cancel_needs_a_reason(api: Api, body: dict) -> None:
    appointment = await book(api, (await api.create_lead())["id"])
    problem = await press(api, "cancel", {"appointmentId": appointment["id"], **body}, 422)
    assert problem["type"] == "/problems/validation"
    assert (await read(api, appointment["id"]))["status"] == "scheduled"


async def test_a_cancelled_appointment_cannot_be_confirmed(api: Api) -> None:
    appointment = await book(api, (await api.create_lead())["id"])
    await press(api, "cancel", {"appointmentId": appointment["id"], "reason": "no longer needed"})
    status, _, problem = await api.post("/api/bookings/confirm", {"appointmentId": appointment["id"]})
    assert (status, problem["type"], problem["currentStatus"]) == (
        409,
        "/problems/appointment-not-scheduled",
        "cancelled",
    )


# Complete and no-show ------------------------------------------------------------
@pytest.mark.parametrize("button", CLOSING)
async def test_close_once_its_time_has_come_then_again(
    api: Api, probe: Probe, infra: Infra, org: str, button: str
) -> None:
    _, _, event_type, closed = BUTTONS[button]
    appointment = await book(api, (await api.create_lead())["id"])
    await api.post("/api/bookings/confirm", {"appointmentId": appointment["id"]})
    await move_to_the_past(infra, appointment["id"])
    answer = await press(api, button, {"appointmentId": appointment["id"], "notes": "  talked pricing "})
    done = answer["appointment"]
    assert (done["status"], done["notes"], done["closed_by"], done["cancel_reason"]) == (
        closed,
        "talked pricing",
        "agent-1",
        None,
    )
    assert done["closed_at"] and done["confirmed_at"]  # the confirmation stays on record
    assert await press(api, button, {"appointmentId": appointment["id"], "notes": "other notes"}) == answer
    assert await read(api, appointment["id"]) == done
    await probe.barrier(org)
    (event,) = probe.events_of(org, event_type)
    data = event["data"]
    assert (data["appointmentId"], data["leadId"], data["by"]) == (appointment["id"], appointment["lead_id"], "agent-1")
    assert at(data["completedAt" if button == "complete" else "markedAt"]) == at(done["closed_at"])


@pytest.mark.parametrize("button", CLOSING)
async def test_closing_without_notes_keeps_the_notes_it_has(api: Api, infra: Infra, button: str) -> None:
    appointment = await book(api, (await api.create_lead())["id"])
    await api.post("/api/bookings/confirm", {"appointmentId": appointment["id"], "notes": "bring the contract"})
    await move_to_the_past(infra, appointment["id"])
    answer = await press(api, button, {"appointmentId": appointment["id"]})
    assert answer["appointment"]["notes"] == "bring the contract"


@pytest.mark.parametrize("button", CLOSING)
async def test_an_appointment_whose_time_has_not_come_cannot_be_closed(
    api: Api, probe: Probe, org: str, button: str
) -> None:
    appointment = await book(api, (await api.create_lead())["id"], soon(hours=0.5))
    problem = await press(api, button, {"appointmentId": appointment["id"]}, 409)
    assert (problem["type"], problem["currentStatus"]) == ("/problems/appointment-not-started", "scheduled")
    assert await read(api, appointment["id"]) == appointment
    await probe.barrier(org)
    assert probe.events_of(org, BUTTONS[button][2]) == []


@pytest.mark.parametrize(
    ("button", "first"),
    [("complete", "no_show"), ("no_show", "complete"), ("complete", "cancel"), ("no_show", "cancel")],
)
async def test_a_closed_appointment_cannot_be_closed_another_way(
    api: Api, infra: Infra, button: str, first: str
) -> None:
    appointment = await book(api, (await api.create_lead())["id"])
    await move_to_the_past(infra, appointment["id"])
    body = {"appointmentId": appointment["id"]} | ({"reason": "wrong day"} if first == "cancel" else {})
    closed = (await press(api, first, body))["appointment"]
    problem = await press(api, button, {"appointmentId": appointment["id"]}, 409)
    assert (problem["type"], problem["currentStatus"]) == ("/problems/appointment-closed", closed["status"])
    assert await read(api, appointment["id"]) == closed


# Every button --------------------------------------------------------------------
@pytest.mark.parametrize("button", BUTTONS)
async def test_unknown_and_foreign_appointments_are_404(api: Api, infra: Infra, button: str) -> None:
    stranger = api.as_user(f"other-{uuid4().hex[:6]}")
    theirs, body = await ready_for(stranger, infra, button)
    for appointment_id in (theirs["id"], str(uuid4()), "not-a-uuid"):
        problem = await press(api, button, {**body, "appointmentId": appointment_id}, 404)
        assert problem["type"] == "/problems/not-found"
    assert await read(stranger, theirs["id"]) == theirs  # untouched, and still its organisation's


@pytest.mark.parametrize("button", BUTTONS)
async def test_a_replay_with_the_same_key_answers_the_same_once(
    api: Api, probe: Probe, infra: Infra, org: str, button: str
) -> None:
    _, body = await ready_for(api, infra, button)
    key = str(uuid4())
    status, headers, first = await api.post(BUTTONS[button][0], body, key=key)
    assert status == 200 and first["appointment"]["status"] == BUTTONS[button][3], first
    again_status, again_headers, again = await api.post(BUTTONS[button][0], body, key=key)
    assert (again_status, again) == (status, first)
    assert again_headers["Idempotent-Replayed"] == "true" and headers.get("Idempotent-Replayed") != "true"
    await probe.barrier(org)
    assert len(probe.events_of(org, BUTTONS[button][2])) == 1


@pytest.mark.parametrize("button", BUTTONS)
async def test_a_duplicate_delivery_on_the_broker_has_one_effect(
    api: Api, probe: Probe, infra: Infra, org: str, button: str
) -> None:
    appointment, body = await ready_for(api, infra, button)
    message_id = uuid4().hex
    routing_key = BUTTONS[button][1]
    correlation_id = await probe.send(routing_key, body, org=org, message_id=message_id)
    await probe.send(routing_key, body, org=org, message_id=message_id, correlation_id=correlation_id)
    first, second = await probe.reply(correlation_id, count=2)
    assert first.status == second.status == 200 and first.body == second.body, (first, second)
    assert sorted([first.headers["x-replayed"], second.headers["x-replayed"]]) == ["false", "true"]
    assert first.body["appointment"]["status"] == BUTTONS[button][3]
    await probe.barrier(org)
    (event,) = probe.events_of(org, BUTTONS[button][2])
    assert event["command_id"] == message_id and event["data"]["appointmentId"] == appointment["id"]


@pytest.mark.parametrize("button", BUTTONS)
async def test_a_transient_failure_is_retried_then_takes_effect_once(
    api: Api, probe: Probe, infra: Infra, stack: Stack, org: str, button: str
) -> None:
    appointment, body = await ready_for(api, infra, button)
    message_id = uuid4().hex
    bookings = stack.processes["bookings"]
    async with appointment_locked(infra, appointment["id"]):
        correlation_id = await probe.send(BUTTONS[button][1], body, org=org, message_id=message_id)
        await eventually(
            lambda: bookings.logged("command.retry_scheduled", command_id=message_id),
            10,
            what="a retry after the lock timeout",
        )
    (reply,) = await probe.reply(correlation_id)
    assert reply.status == 200 and reply.headers["x-attempt"] >= 2, reply
    assert reply.body["appointment"]["status"] == BUTTONS[button][3]
    await probe.barrier(org)
    assert len(probe.events_of(org, BUTTONS[button][2])) == 1
