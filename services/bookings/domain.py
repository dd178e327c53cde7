"""Appointment rules: pure functions, no I/O."""
from datetime import datetime

from shared.contracts.bookings import AppointmentStatus as S
from shared.problems import AlreadyStarted, NotScheduled


def check_confirm(appointment_id: str, status: S, starts_at: datetime, now: datetime) -> bool:
    """True when the appointment must be confirmed now, False when it already is; raises when refused."""
    if status == S.confirmed:
        return False
    if status != S.scheduled:
        raise NotScheduled(f"appointment {appointment_id} is {status}; only a scheduled appointment can be confirmed",
                           currentStatus=str(status))
    if starts_at <= now:
        raise AlreadyStarted(f"appointment {appointment_id} started at {starts_at.isoformat()}; it can no longer be "
                             "confirmed", currentStatus=str(status))
    return True
