"""Bookings subscribers: decode, apply the rules, persist, answer."""

from datetime import UTC, datetime
from uuid import uuid4

import asyncpg

from services.bookings import domain, repository
from shared import lead_directory
from shared.contracts.bookings import (
    AppointmentCancelled,
    AppointmentCompleted,
    AppointmentConfirmed,
    AppointmentCreated,
    AppointmentList,
    AppointmentNoShow,
    AppointmentReply,
    AppointmentRescheduled,
    AppointmentView,
    CancelAppointment,
    Clash,
    CompleteAppointment,
    ConfirmAppointment,
    ConfirmedView,
    ConfirmReply,
    CreateAppointment,
    GetAppointment,
    LeadAppointments,
    MarkNoShow,
    RescheduleAppointment,
    RescheduleReply,
)
from shared.contracts.bookings import AppointmentStatus as S
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
        row = await repository.insert(
            conn,
            uuid4(),
            meta.org_id,
            cmd.leadId,
            cmd.startsAt,
            cmd.durationMinutes,
            cmd.title,
            datetime.now(UTC),
            meta.user_id,
        )
        appointment = AppointmentView(**row)
        created = AppointmentCreated(
            appointmentId=appointment.id,
            leadId=appointment.lead_id,
            startsAt=appointment.starts_at,
            durationMinutes=appointment.duration_minutes,
            title=appointment.title,
            by=meta.user_id,
        )
        return Outcome(ok(AppointmentReply(appointment=appointment), 201), [meta.event(created)])

    async def confirm(self, conn: asyncpg.Connection, cmd: ConfirmAppointment, meta: Meta) -> Outcome:
        row = await self._locked(conn, meta, cmd.appointmentId)
        now = datetime.now(UTC)
        if not domain.check_confirm(cmd.appointmentId, row["status"], row["starts_at"], now):
            return Outcome(ok(ConfirmReply(appointment=ConfirmedView(**row))))
        by = cmd.confirmedBy or meta.user_id
        row = await repository.confirm(conn, cmd.appointmentId, now, by, cmd.notes)
        confirmed = AppointmentConfirmed(
            appointmentId=row["id"],
            leadId=row["lead_id"],
            confirmedAt=now,
            confirmedBy=by,
            sendSms=cmd.sendSms,
            startsAt=row["starts_at"],
        )
        return Outcome(ok(ConfirmReply(appointment=ConfirmedView(**row))), [meta.event(confirmed)])

    async def reschedule(self, conn: asyncpg.Connection, cmd: RescheduleAppointment, meta: Meta) -> Outcome:
        row = await self._locked(conn, meta, cmd.appointmentId)
        duration = row["duration_minutes"] if cmd.durationMinutes is None else cmd.durationMinutes
        events = []
        if domain.check_reschedule(
            cmd.appointmentId,
            row["status"],
            row["starts_at"],
            row["duration_minutes"],
            cmd.startsAt,
            duration,
            datetime.now(UTC),
        ):
            previous = row["starts_at"]
            row = await repository.reschedule(conn, cmd.appointmentId, cmd.startsAt, duration)
            events.append(
                meta.event(
                    AppointmentRescheduled(
                        appointmentId=row["id"],
                        leadId=row["lead_id"],
                        previousStartsAt=previous,
                        startsAt=row["starts_at"],
                        durationMinutes=row["duration_minutes"],
                        reason=cmd.reason,
                        by=meta.user_id,
                    )
                )
            )
        others = await repository.open_of_lead(conn, meta.org_id, row["lead_id"], row["id"])
        clashes = domain.clashes(row["starts_at"], row["duration_minutes"], others)
        return Outcome(
            ok(RescheduleReply(appointment=AppointmentView(**row), clashes=[Clash(**c) for c in clashes])), events
        )

    async def cancel(self, conn: asyncpg.Connection, cmd: CancelAppointment, meta: Meta) -> Outcome:
        row = await self._locked(conn, meta, cmd.appointmentId)
        if not domain.check_cancel(cmd.appointmentId, row["status"]):
            return Outcome(ok(AppointmentReply(appointment=AppointmentView(**row))))
        now = datetime.now(UTC)
        row = await repository.close(conn, cmd.appointmentId, S.cancelled, now, meta.user_id, reason=cmd.reason)
        cancelled = AppointmentCancelled(
            appointmentId=row["id"], leadId=row["lead_id"], reason=cmd.reason, cancelledAt=now, by=meta.user_id
        )
        return Outcome(ok(AppointmentReply(appointment=AppointmentView(**row))), [meta.event(cancelled)])

    async def complete(self, conn: asyncpg.Connection, cmd: CompleteAppointment, meta: Meta) -> Outcome:
        return await self._close(conn, cmd.appointmentId, S.completed, cmd.notes, meta)

    async def no_show(self, conn: asyncpg.Connection, cmd: MarkNoShow, meta: Meta) -> Outcome:
        return await self._close(conn, cmd.appointmentId, S.no_show, cmd.notes, meta)

    async def _close(
        self, conn: asyncpg.Connection, appointment_id: str, target: S, notes: str | None, meta: Meta
    ) -> Outcome:
        """Completed or no_show: the same rule, the same columns, its own event."""
        row = await self._locked(conn, meta, appointment_id)
        now = datetime.now(UTC)
        if not domain.check_close(appointment_id, row["status"], target, row["starts_at"], now):
            return Outcome(ok(AppointmentReply(appointment=AppointmentView(**row))))
        row = await repository.close(conn, appointment_id, target, now, meta.user_id, notes=notes)
        ids = {"appointmentId": row["id"], "leadId": row["lead_id"], "by": meta.user_id}
        data = (
            AppointmentCompleted(**ids, completedAt=now)
            if target == S.completed
            else AppointmentNoShow(**ids, markedAt=now)
        )
        return Outcome(ok(AppointmentReply(appointment=AppointmentView(**row))), [meta.event(data)])

    @staticmethod
    async def _locked(conn: asyncpg.Connection, meta: Meta, appointment_id: str) -> asyncpg.Record:
        """The caller organisation's appointment, locked until the command's transaction ends."""
        row = await repository.get(conn, meta.org_id, appointment_id, lock=True)
        if row is None:
            raise not_found("appointment", appointment_id)
        return row

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
    service.command(
        CreateAppointment,
        bookings.create,
        "Book an appointment with a lead of the caller's organisation. Emits appointments.created.",
    )
    service.command(
        ConfirmAppointment,
        bookings.confirm,
        "Confirm a scheduled appointment that has not started. Emits appointments.confirmed.",
    )
    service.command(
        RescheduleAppointment,
        bookings.reschedule,
        "Move an open appointment that has not started to a new time (a confirmed one is scheduled "
        "again); reports the lead's other open appointments it overlaps. Emits appointments.rescheduled.",
    )
    service.command(
        CancelAppointment,
        bookings.cancel,
        "Cancel a scheduled or confirmed appointment, with a reason. Emits appointments.cancelled.",
    )
    service.command(
        CompleteAppointment,
        bookings.complete,
        "Mark an open appointment completed once its time has come. Emits appointments.completed.",
    )
    service.command(
        MarkNoShow,
        bookings.no_show,
        "Mark that the lead did not turn up, once the appointment's time has come. Emits appointments.no_show.",
    )
    service.event(
        LeadCreated, lead_directory.remember_created, "Learn of a new lead (the bookings projection of leads)."
    )
    service.query(GetAppointment, bookings.get, "One appointment of the caller's organisation.")
    service.query(LeadAppointments, bookings.of_lead, "A lead's appointments, by start time.")
