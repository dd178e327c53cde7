"""Bookings: commands (`bookings.*` on `commands`), queries, events, views."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from shared.contracts.declare import Button, Read
from shared.contracts.envelope import Command, EventData, Query
from shared.contracts.leads import LeadId
from shared.problems import AlreadyStarted, AppointmentClosed, NotFound, NotScheduled, NotStarted

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
class CreateAppointment(Command):
    ROUTING_KEY = "bookings.create"

    leadId: LeadId
    startsAt: AwareDatetime
    durationMinutes: int = Field(30, ge=5, le=24 * 60)
    title: Text | None = None


class ConfirmAppointment(Command):
    """Only a scheduled appointment that has not started yet."""

    ROUTING_KEY = "bookings.confirm"

    appointmentId: AppointmentId
    confirmedBy: Text | None = None
    notes: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None
    sendSms: bool = False


class RescheduleAppointment(Command):
    """A new time (and length) for an open appointment; a confirmed one is scheduled again (to be confirmed)."""

    ROUTING_KEY = "bookings.reschedule"
    appointmentId: AppointmentId
    startsAt: AwareDatetime
    durationMinutes: int | None = Field(None, ge=5, le=24 * 60)
    reason: Text | None = None


class CancelAppointment(Command):
    ROUTING_KEY = "bookings.cancel"
    appointmentId: AppointmentId
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class CompleteAppointment(Command):
    """Once its time has come."""

    ROUTING_KEY = "bookings.complete"
    appointmentId: AppointmentId
    notes: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class MarkNoShow(Command):
    """Once its time has come: the lead did not turn up."""

    ROUTING_KEY = "bookings.no_show"
    appointmentId: AppointmentId
    notes: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


# Queries -------------------------------------------------------------------
class GetAppointment(Query):
    ROUTING_KEY = "bookings.query.get"
    appointmentId: AppointmentId


class LeadAppointments(Query):
    ROUTING_KEY = "bookings.query.of_lead"
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
    # Set when it was cancelled, completed or marked no-show (and why, for a cancel).
    closed_at: datetime | None = None
    closed_by: str | None = None
    cancel_reason: str | None = None


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


class Clash(BaseModel):
    """Another open appointment of the same lead that overlaps the new time (reported, not refused)."""

    id: str
    starts_at: datetime
    duration_minutes: int
    status: AppointmentStatus


class RescheduleReply(BaseModel):
    appointment: AppointmentView
    clashes: list[Clash]


# Events (exchange `events`, routing key = type) ----------------------------
class AppointmentCreated(EventData):
    """data of `appointments.created`"""

    TYPE = "appointments.created"

    appointmentId: str
    leadId: str
    startsAt: datetime
    durationMinutes: int
    title: str | None
    by: str


class AppointmentConfirmed(EventData):
    """data of `appointments.confirmed` (startsAt rides along for the confirmation SMS)"""

    TYPE = "appointments.confirmed"

    appointmentId: str
    leadId: str
    confirmedAt: datetime
    confirmedBy: str
    sendSms: bool
    startsAt: datetime


class AppointmentRescheduled(EventData):
    """data of `appointments.rescheduled`"""

    TYPE = "appointments.rescheduled"
    appointmentId: str
    leadId: str
    previousStartsAt: datetime
    startsAt: datetime
    durationMinutes: int
    reason: str | None
    by: str


class AppointmentCancelled(EventData):
    """data of `appointments.cancelled`"""

    TYPE = "appointments.cancelled"
    appointmentId: str
    leadId: str
    reason: str
    cancelledAt: datetime
    by: str


class AppointmentCompleted(EventData):
    """data of `appointments.completed`"""

    TYPE = "appointments.completed"
    appointmentId: str
    leadId: str
    completedAt: datetime
    by: str


class AppointmentNoShow(EventData):
    """data of `appointments.no_show`"""

    TYPE = "appointments.no_show"
    appointmentId: str
    leadId: str
    markedAt: datetime
    by: str


EVENTS: tuple[type[EventData], ...] = (
    AppointmentCreated,
    AppointmentConfirmed,
    AppointmentRescheduled,
    AppointmentCancelled,
    AppointmentCompleted,
    AppointmentNoShow,
)


BUTTONS = (
    Button(
        "create_appointment",
        "/api/appointments",
        CreateAppointment,
        AppointmentReply,
        "Book an appointment with a lead",
        status=201,
        cli="booking create leadId startsAt",
        flags={"durationMinutes": "--duration"},
        refusals=(NotFound,),
        events=(AppointmentCreated,),
    ),
    Button(
        "confirm_booking",
        "/api/bookings/confirm",
        ConfirmAppointment,
        ConfirmReply,
        "Confirm a scheduled appointment (optionally texting the lead)",
        cli="booking confirm appointmentId",
        refusals=(NotFound, NotScheduled, AlreadyStarted),
        events=(AppointmentConfirmed,),
    ),
    Button(
        "reschedule_appointment",
        "/api/bookings/reschedule",
        RescheduleAppointment,
        RescheduleReply,
        "Move an open appointment to a new time (clashes with the lead's other appointments are reported)",
        cli="booking reschedule appointmentId startsAt",
        flags={"durationMinutes": "--duration"},
        refusals=(NotFound, AppointmentClosed, AlreadyStarted),
        events=(AppointmentRescheduled,),
    ),
    Button(
        "cancel_appointment",
        "/api/bookings/cancel",
        CancelAppointment,
        AppointmentReply,
        "Cancel an open appointment, with a reason",
        cli="booking cancel appointmentId reason",
        refusals=(NotFound, AppointmentClosed),
        events=(AppointmentCancelled,),
    ),
    Button(
        "complete_appointment",
        "/api/bookings/complete",
        CompleteAppointment,
        AppointmentReply,
        "Mark an appointment completed (once its time has come)",
        cli="booking complete appointmentId",
        refusals=(NotFound, AppointmentClosed, NotStarted),
        events=(AppointmentCompleted,),
    ),
    Button(
        "mark_no_show",
        "/api/bookings/no-show",
        MarkNoShow,
        AppointmentReply,
        "Mark that the lead did not turn up (once its time has come)",
        cli="booking no-show appointmentId",
        refusals=(NotFound, AppointmentClosed, NotStarted),
        events=(AppointmentNoShow,),
    ),
)
READS = (
    Read(
        "get_appointment",
        "/api/appointments/{appointmentId}",
        GetAppointment,
        AppointmentReply,
        "One appointment",
        cli="booking get appointmentId",
    ),
    Read(
        "lead_appointments",
        "/api/leads/{leadId}/appointments",
        LeadAppointments,
        AppointmentList,
        "A lead's appointments",
        cli="booking list leadId",
    ),
)
