"""Bookings subscribers: decode, apply the rules, persist, answer."""
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg

from services.bookings import domain, repository
from shared import lead_directory
from shared.contracts.bookings import (
    AppointmentConfirmed,
    AppointmentCreated,
    AppointmentList,
    AppointmentReply,
    AppointmentView,
    ConfirmAppointment,
    ConfirmedView,
    ConfirmReply,
    CreateAppointment,
    GetAppointment,
    LeadAppointments,
)
from shared.contracts.envelope import Reply
from shared.contracts.leads import LeadCreated
from shared.lead_directory import Directory
from shared.messages import Meta, Outcome, ok
from shared.problems import not_found
from shared.service import Service


class BookingHandlers:
    def __init__(self, directory: Directory):
        self.directory = directory

    async def create(self, conn: asyncpg.Connection, cmd: CreateAppointment, meta: Meta) -> Outcome:
        if await self.directory.find(conn, meta.org_id, cmd.leadId) is None:
            raise not_found("lead", cmd.leadId)
        row = await repository.insert(conn, uuid4(), meta.org_id, cmd.leadId, cmd.startsAt, cmd.durationMinutes,
                                      cmd.title, datetime.now(UTC), meta.user_id)
        appointment = AppointmentView(**row)
        created = AppointmentCreated(appointmentId=appointment.id, leadId=appointment.lead_id,
                                     startsAt=appointment.starts_at, durationMinutes=appointment.duration_minutes,
                                     title=appointment.title, by=meta.user_id)
        return Outcome(ok(AppointmentReply(appointment=appointment), 201), [meta.event(created)])

    async def confirm(self, conn: asyncpg.Connection, cmd: ConfirmAppointment, meta: Meta) -> Outcome:
        row = await repository.get(conn, meta.org_id, cmd.appointmentId, lock=True)
        if row is None:
            raise not_found("appointment", cmd.appointmentId)
        now = datetime.now(UTC)
        if not domain.check_confirm(cmd.appointmentId, row["status"], row["starts_at"], now):
            return Outcome(ok(ConfirmReply(appointment=ConfirmedView(**row))))
        by = cmd.confirmedBy or meta.user_id
        row = await repository.confirm(conn, cmd.appointmentId, now, by, cmd.notes)
        confirmed = AppointmentConfirmed(appointmentId=row["id"], leadId=row["lead_id"], confirmedAt=now,
                                         confirmedBy=by, sendSms=cmd.sendSms, startsAt=row["starts_at"])
        return Outcome(ok(ConfirmReply(appointment=ConfirmedView(**row))),
                       [meta.event(confirmed)])

    # Queries -------------------------------------------------------------------
    async def get(self, conn: asyncpg.Connection, query: GetAppointment, org: str) -> Reply:
        row = await repository.get(conn, org, query.appointmentId)
        if row is None:
            raise not_found("appointment", query.appointmentId)
        return ok(AppointmentReply(appointment=AppointmentView(**row)))

    async def of_lead(self, conn: asyncpg.Connection, query: LeadAppointments, org: str) -> Reply:
        if await self.directory.find(conn, org, query.leadId) is None:
            raise not_found("lead", query.leadId)
        rows = await repository.of_lead(conn, org, query.leadId)
        return ok(AppointmentList(appointments=[AppointmentView(**r) for r in rows]))


def register(service: Service, bookings: BookingHandlers) -> None:
    service.command(CreateAppointment, bookings.create,
                    "Book an appointment with a lead of the caller's organisation. Emits appointments.created.")
    service.command(ConfirmAppointment, bookings.confirm,
                    "Confirm a scheduled appointment that has not started. Emits appointments.confirmed.")
    service.event(LeadCreated, lambda event: lead_directory.remember_created,
                  "Learn of a new lead (the bookings projection of leads).")
    service.query(GetAppointment, bookings.get, "One appointment of the caller's organisation.")
    service.query(LeadAppointments, bookings.of_lead, "A lead's appointments, by start time.")
