"""Appointment rules: confirm, reschedule, cancel, complete, no-show, clashes."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.bookings import domain
from shared.contracts.bookings import AppointmentStatus as S
from shared.problems import (
    AlreadyStarted,
    AppointmentClosed,
    NotScheduled,
    NotStarted,
    Rejected,
)

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=2)
EARLIER = NOW - timedelta(hours=2)
OPEN = [S.scheduled, S.confirmed]
CLOSED = [S.cancelled, S.completed, S.no_show]


def refusal(error: type[Rejected], call, *args) -> dict:  # type: ignore[no-untyped-def]
    with pytest.raises(error) as refused:
        call(*args)
    return refused.value.body


# Confirm -------------------------------------------------------------------------
def test_confirm_a_scheduled_appointment_once() -> None:
    assert domain.check_confirm("a1", S.scheduled, LATER, NOW) is True
    assert domain.check_confirm("a1", S.confirmed, LATER, NOW) is False


@pytest.mark.parametrize("status", CLOSED)
def test_confirming_a_closed_appointment_is_not_scheduled_naming_its_status(status: S) -> None:
    body = refusal(NotScheduled, domain.check_confirm, "a1", status, LATER, NOW)
    assert (body["status"], body["type"], body["currentStatus"]) == (409, "/problems/appointment-not-scheduled", status)
    assert str(status) in body["detail"]


def test_confirming_a_started_appointment_is_refused() -> None:
    body = refusal(AlreadyStarted, domain.check_confirm, "a1", S.scheduled, NOW, NOW)
    assert body["type"] == "/problems/appointment-in-the-past"


# Reschedule ----------------------------------------------------------------------
@pytest.mark.parametrize("status", OPEN)
def test_an_open_appointment_can_move_to_a_new_time_or_length(status: S) -> None:
    assert domain.check_reschedule("a1", status, LATER, 30, LATER + timedelta(days=1), 30, NOW) is True
    assert domain.check_reschedule("a1", status, LATER, 30, LATER, 45, NOW) is True
    assert domain.check_reschedule("a1", status, LATER, 30, NOW + timedelta(minutes=1), 30, NOW) is True  # earlier


@pytest.mark.parametrize("status", OPEN)
def test_the_same_time_and_length_is_no_change(status: S) -> None:
    assert domain.check_reschedule("a1", status, LATER, 30, LATER, 30, NOW) is False
    # The same instant written in another time zone is the same time.
    elsewhere = LATER.astimezone(timezone(timedelta(hours=-5)))
    assert domain.check_reschedule("a1", status, LATER, 30, elsewhere, 30, NOW) is False


@pytest.mark.parametrize("status", CLOSED)
def test_a_closed_appointment_cannot_be_rescheduled(status: S) -> None:
    body = refusal(
        AppointmentClosed, domain.check_reschedule, "a1", status, LATER, 30, LATER + timedelta(days=1), 30, NOW
    )
    assert (body["status"], body["type"], body["currentStatus"]) == (409, "/problems/appointment-closed", status)


@pytest.mark.parametrize("starts_at", [NOW, EARLIER])
def test_an_appointment_that_has_started_cannot_be_rescheduled(starts_at: datetime) -> None:
    body = refusal(AlreadyStarted, domain.check_reschedule, "a1", S.confirmed, starts_at, 30, LATER, 30, NOW)
    assert (body["status"], body["type"]) == (409, "/problems/appointment-in-the-past")


@pytest.mark.parametrize("new_start", [NOW, EARLIER])
def test_a_new_time_in_the_past_is_invalid(new_start: datetime) -> None:
    body = refusal(Rejected, domain.check_reschedule, "a1", S.scheduled, LATER, 30, new_start, 30, NOW)
    assert (body["status"], body["type"]) == (422, "/problems/validation")
    assert body["errors"][0]["field"] == "startsAt"


# Cancel --------------------------------------------------------------------------
@pytest.mark.parametrize("status", OPEN)
def test_an_open_appointment_can_be_cancelled(status: S) -> None:
    assert domain.check_cancel("a1", status) is True


def test_cancelling_a_cancelled_appointment_is_no_change() -> None:
    assert domain.check_cancel("a1", S.cancelled) is False


@pytest.mark.parametrize("status", [S.completed, S.no_show])
def test_a_completed_or_no_show_appointment_cannot_be_cancelled(status: S) -> None:
    body = refusal(AppointmentClosed, domain.check_cancel, "a1", status)
    assert (body["status"], body["currentStatus"]) == (409, status)


# Complete and no-show ------------------------------------------------------------
TARGETS = [S.completed, S.no_show]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("status", OPEN)
@pytest.mark.parametrize("starts_at", [NOW, EARLIER])
def test_an_open_appointment_whose_time_has_come_can_be_closed(target: S, status: S, starts_at: datetime) -> None:
    assert domain.check_close("a1", status, target, starts_at, NOW) is True


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("status", OPEN)
def test_an_appointment_in_the_future_cannot_be_closed(target: S, status: S) -> None:
    body = refusal(NotStarted, domain.check_close, "a1", status, target, LATER, NOW)
    assert (body["status"], body["type"]) == (409, "/problems/appointment-not-started")


@pytest.mark.parametrize("target", TARGETS)
def test_closing_again_the_same_way_is_no_change(target: S) -> None:
    assert domain.check_close("a1", target, target, EARLIER, NOW) is False


@pytest.mark.parametrize(("target", "status"), [(t, s) for t in TARGETS for s in CLOSED if s != t])
def test_a_closed_appointment_cannot_be_closed_another_way(target: S, status: S) -> None:
    for starts_at in (EARLIER, LATER):  # closed is the answer, whatever the time
        body = refusal(AppointmentClosed, domain.check_close, "a1", status, target, starts_at, NOW)
        assert (body["status"], body["type"], body["currentStatus"]) == (409, "/problems/appointment-closed", status)


# Clashes -------------------------------------------------------------------------
def slot(minutes_from_now: int, length: int, status: S = S.scheduled) -> dict:
    return {
        "id": f"at{minutes_from_now}",
        "starts_at": NOW + timedelta(minutes=minutes_from_now),
        "duration_minutes": length,
        "status": status,
    }


@pytest.mark.parametrize(
    ("other", "clash"),
    [
        (slot(0, 60), True),  # the same slot
        (slot(-30, 31), True),  # ends a minute into it
        (slot(59, 30), True),  # starts in its last minute
        (slot(10, 10), True),  # inside it
        (slot(-60, 180), True),  # around it
        (slot(-30, 30), False),  # ends as it starts
        (slot(60, 30), False),  # starts as it ends
        (slot(120, 30), False),
        (slot(0, 60, S.confirmed), True),
        (slot(0, 60, S.cancelled), False),
        (slot(0, 60, S.completed), False),
        (slot(0, 60, S.no_show), False),
    ],
)
def test_clashes_are_the_open_appointments_that_overlap(other: dict, clash: bool) -> None:
    assert domain.clashes(NOW, 60, [other]) == ([other] if clash else [])
