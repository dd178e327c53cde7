"""Bookings: commands (`bookings.*` on `commands`), queries, events, views."""
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from shared.contracts.envelope import Incoming
from shared.contracts.leads import LeadId

SERVICE = "bookings"
AppointmentId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class AppointmentStatus(StrEnum):
    scheduled = "scheduled"
    confirmed = "confirmed"
    cancelled = "cancelled"
    completed = "completed"
    no_show = "no_show"


# Commands ------------------------------------------------------------------
class CreateAppointment(Incoming):
    """`bookings.create`"""

    leadId: LeadId
    startsAt: AwareDatetime
    durationMinutes: int = Field(30, ge=5, le=24 * 60)
    title: Text | None = None


class ConfirmAppointment(Incoming):
    """`bookings.confirm`: only a scheduled appointment that has not started yet."""

    appointmentId: AppointmentId
    confirmedBy: Text | None = None
    notes: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None
    sendSms: bool = False


COMMANDS = {"bookings.create": CreateAppointment, "bookings.confirm": ConfirmAppointment}


# Queries -------------------------------------------------------------------
class GetAppointment(Incoming):
    appointmentId: AppointmentId


class LeadAppointments(Incoming):
    leadId: LeadId


# Views ---------------------------------------------------------------------
class AppointmentView(BaseModel):
    id: str
    lead_id: str
    starts_at: datetime
    duration_minutes: int
    title: str | None
    status: AppointmentStatus
    confirmed_at: datetime | None
    confirmed_by: str | None
    notes: str | None
    created_at: datetime


class AppointmentReply(BaseModel):
    appointment: AppointmentView


class ConfirmedView(BaseModel):
    id: str
    status: AppointmentStatus
    confirmed_at: datetime | None


class ConfirmReply(BaseModel):
    appointment: ConfirmedView


class AppointmentList(BaseModel):
    appointments: list[AppointmentView]


# Events (exchange `events`, routing key = type) ----------------------------
class AppointmentCreated(BaseModel):
    """data of `appointments.created`"""

    appointmentId: str
    leadId: str
    startsAt: datetime
    durationMinutes: int
    title: str | None
    by: str


class AppointmentConfirmed(BaseModel):
    """data of `appointments.confirmed` (startsAt rides along for the confirmation SMS)"""

    appointmentId: str
    leadId: str
    confirmedAt: datetime
    confirmedBy: str
    sendSms: bool
    startsAt: datetime


EVENTS: dict[str, type[BaseModel]] = {"appointments.created": AppointmentCreated,
                                      "appointments.confirmed": AppointmentConfirmed}
