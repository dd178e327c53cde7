"""Appointment rules: pure functions, no I/O."""
from datetime import datetime

from shared.contracts.bookings import AppointmentStatus as S
from shared.retry import Rejected


def check_confirm(appointment_id: str, status: S, starts_at: datetime, now: datetime) -> bool:
    """True when the appointment must be confirmed now, False when it already is; raises when refused."""
    if status == S.confirmed:
        return False
    if status != S.scheduled:
        raise Rejected(409, "Appointment cannot be confirmed",
                       f"appointment {appointment_id} is {status}; only a scheduled appointment can be confirmed",
                       "/problems/appointment-not-scheduled", currentStatus=str(status))
    if starts_at <= now:
        raise Rejected(409, "Appointment already started",
                       f"appointment {appointment_id} started at {starts_at.isoformat()}; it can no longer be confirmed",
                       "/problems/appointment-in-the-past", currentStatus=str(status))
    return True
