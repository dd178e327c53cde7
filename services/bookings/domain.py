"""Appointment rules: pure functions, no I/O.

    scheduled ──confirm──► confirmed          (reschedule: either one ──► scheduled, to be confirmed again)
    scheduled | confirmed ──cancel──► cancelled            (any time)
    scheduled | confirmed ──complete | no-show──► completed | no_show   (once its time has come)

Cancelled, completed and no_show are closed: nothing changes them. Each check answers True when
the change must be made, False when it is already made (200, no event), or raises a named refusal.
"""

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from shared.contracts.bookings import AppointmentStatus as S
from shared.problems import (
    AlreadyStarted,
    AppointmentClosed,
    NotScheduled,
    NotStarted,
    invalid,
)

OPEN = frozenset({S.scheduled, S.confirmed})


def check_confirm(appointment_id: str, status: S, starts_at: datetime, now: datetime) -> bool:
    """True when the appointment must be confirmed now, False when it already is; raises when refused."""
    if status == S.confirmed:
        return False
    if status != S.scheduled:
        raise NotScheduled(
            f"appointment {appointment_id} is {status}; only a scheduled appointment can be confirmed",
            currentStatus=str(status),
        )
    if starts_at <= now:
        raise AlreadyStarted(
            f"appointment {appointment_id} started at {starts_at.isoformat()}; it can no longer be confirmed",
            currentStatus=str(status),
        )
    return True


def check_reschedule(
    appointment_id: str,
    status: S,
    starts_at: datetime,
    duration: int,
    new_starts_at: datetime,
    new_duration: int,
    now: datetime,
) -> bool:
    """True when the appointment must move to (new_starts_at, new_duration), False when it is there already."""
    _refuse_closed(appointment_id, status, "rescheduled")
    if starts_at <= now:
        raise AlreadyStarted(
            f"appointment {appointment_id} started at {starts_at.isoformat()}; it can no longer be rescheduled",
            currentStatus=str(status),
        )
    if new_starts_at <= now:
        raise invalid(
            f"appointment {appointment_id} cannot be moved to {new_starts_at.isoformat()}: that is in the past",
            [{"field": "startsAt", "message": "must be in the future"}],
        )
    return (new_starts_at, new_duration) != (starts_at, duration)


def check_cancel(appointment_id: str, status: S) -> bool:
    """True when the appointment must be cancelled now, False when it already is."""
    if status == S.cancelled:
        return False
    _refuse_closed(appointment_id, status, "cancelled")
    return True


def check_close(appointment_id: str, status: S, target: S, starts_at: datetime, now: datetime) -> bool:
    """Completed or no-show (`target`): True when it must be marked now, False when it already is."""
    if status == target:
        return False
    _refuse_closed(appointment_id, status, f"marked {target}")
    if starts_at > now:
        raise NotStarted(
            f"appointment {appointment_id} starts at {starts_at.isoformat()}; it can be marked {target} "
            "once its time has come",
            currentStatus=str(status),
            startsAt=starts_at.isoformat(),
        )
    return True


def overlaps(a_start: datetime, a_minutes: int, b_start: datetime, b_minutes: int) -> bool:
    """Half-open intervals: one that ends when the other starts does not overlap it."""
    return a_start < b_start + timedelta(minutes=b_minutes) and b_start < a_start + timedelta(minutes=a_minutes)


def clashes(starts_at: datetime, minutes: int, others: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The open appointments among `others` (rows with starts_at, duration_minutes, status) that overlap."""
    return [
        o for o in others if o["status"] in OPEN and overlaps(starts_at, minutes, o["starts_at"], o["duration_minutes"])
    ]


def _refuse_closed(appointment_id: str, status: S, change: str) -> None:
    if status not in OPEN:
        raise AppointmentClosed(
            f"appointment {appointment_id} is {status}; it can no longer be {change}", currentStatus=str(status)
        )
