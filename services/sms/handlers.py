"""SMS subscribers: sends (through `sending.Sender`), templates, provider callbacks, inbound, queries."""

from datetime import UTC, datetime
from uuid import uuid4

import asyncpg

from services.sms import domain, repository
from services.sms.sending import Sender, event
from shared import lead_directory
from shared.contracts.bookings import AppointmentConfirmed
from shared.contracts.envelope import Reply
from shared.contracts.leads import LeadCreated
from shared.contracts.sms import (
    CreateTemplate,
    InboundSms,
    ListTemplates,
    OptOutChanged,
    ProviderStatus,
    SendSms,
    SmsHistory,
    SmsHistoryReply,
    SmsRecord,
    SmsStatus,
    SmsStatusChanged,
    TemplateList,
    TemplateReply,
    TemplateView,
)
from shared.messages import IGNORED, Meta, Outcome, ok
from shared.problems import AlreadyExists, not_found
from shared.service import Service

# Twilio's message statuses, mapped onto ours (accepted/queued/sending are all "on its way").
PROVIDER_STATUS = {
    "accepted": SmsStatus.sending,
    "queued": SmsStatus.sending,
    "sending": SmsStatus.sending,
    "sent": SmsStatus.sent,
    "delivered": SmsStatus.delivered,
    "undelivered": SmsStatus.undelivered,
    "failed": SmsStatus.failed,
}


def template_view(row: asyncpg.Record) -> TemplateView:
    return TemplateView(**row, fields=domain.template_fields(row["body"]))


async def confirmation_text(
    conn: asyncpg.Connection, confirmed: AppointmentConfirmed, meta: Meta, lead: asyncpg.Record
) -> str:
    """The text of the SMS an `appointments.confirmed` asks for (when `sendSms`): a `Sender` of the event's typed
    data (it names its lead), keyed by the event's id, so a redelivered event sends once."""
    return domain.confirmation_text(lead["name"], confirmed.startsAt)


async def create_template(conn: asyncpg.Connection, cmd: CreateTemplate, meta: Meta) -> Outcome:
    domain.template_fields(cmd.body)
    row = await repository.insert_template(conn, uuid4(), meta.org_id, cmd.name, cmd.body)
    if row is None:
        raise AlreadyExists(f"a template named {cmd.name!r} exists already")
    return Outcome(ok(TemplateReply(template=template_view(row)), 201))


class SidNotYetKnown(Exception):
    """A callback can overtake the commit of its sid (or a crash delayed it): retried, like any transient failure."""


async def provider_status(conn: asyncpg.Connection, cmd: ProviderStatus, meta: Meta) -> Outcome:
    """Forward only: a late or repeated callback never moves a status back."""
    row = await repository.by_sid(conn, cmd.sid)
    if row is None:
        raise SidNotYetKnown(cmd.sid)
    new = PROVIDER_STATUS.get(cmd.status)
    if new is None or not domain.moves_forward(row["status"], new):
        return Outcome(IGNORED)
    now = datetime.now(UTC)
    updated = await repository.set_status(
        conn,
        row["id"],
        new,
        error_code=cmd.errorCode,
        sent_at=now if new == SmsStatus.sent else None,
        delivered_at=now if new == SmsStatus.delivered else None,
    )
    data = SmsStatusChanged(
        smsId=row["id"], leadId=row["lead_id"], from_=row["status"], to=new, errorCode=cmd.errorCode
    )
    return Outcome(Reply(status=200, body={"applied": True, "status": updated["status"]}), [event(row, meta, data)])


async def inbound(conn: asyncpg.Connection, cmd: InboundSms, meta: Meta) -> Outcome:
    """STOP-like words opt the number out, START-like words back in; anything else is not ours to read."""
    opt_out = domain.keyword(cmd.body)
    if opt_out is None:
        return Outcome(IGNORED)
    word = " ".join(cmd.body.split()).upper()
    await repository.set_opt_out(conn, cmd.from_, opt_out, word)
    events = [
        meta.event(
            OptOutChanged(leadId=lead["lead_id"], phone=cmd.from_, optedOut=opt_out, keyword=word),
            org_id=lead["org_id"],
        )
        for lead in await repository.leads_with_phone(conn, cmd.from_)
    ]
    return Outcome(Reply(status=200, body={"applied": True, "optedOut": opt_out}), events)


class Queries:
    def __init__(self, directory: lead_directory.Directory):
        self.directory = directory

    async def history(self, conn: asyncpg.Connection, query: SmsHistory, org: str) -> Reply:
        if await self.directory.find(conn, org, query.leadId) is None:
            raise not_found("lead", query.leadId)
        rows = await repository.history(conn, org, query.leadId)
        return ok(SmsHistoryReply(sms_messages=[SmsRecord(**r) for r in rows]))

    async def templates(self, conn: asyncpg.Connection, query: ListTemplates, org: str) -> Reply:
        return ok(TemplateList(templates=[template_view(r) for r in await repository.templates(conn, org)]))


def register(
    service: Service, sender: Sender[SendSms], confirmation: Sender[AppointmentConfirmed], reads: Queries
) -> None:
    service.effect(
        SendSms, sender, "Text a lead. Answers sent, or queued when the provider is down; emits sms.sent / sms.failed."
    )
    service.command(CreateTemplate, create_template, "Store a template whose {{fields}} are filled from the lead.")
    service.command(
        ProviderStatus,
        provider_status,
        "A provider status callback (deduped on its idempotency token). Emits sms.status_changed.",
    )
    service.command(InboundSms, inbound, "A message from a lead: STOP / START. Emits sms.opt_out_changed.")
    service.event(LeadCreated, lead_directory.remember_created, "Learn of a new lead (the SMS projection of leads).")
    service.event(
        AppointmentConfirmed,
        confirmation,
        "Text the lead a confirmation when the agent asked for one (one SMS per event).",
        when=lambda confirmed: confirmed.sendSms,
    )
    service.query(SmsHistory, reads.history, "A lead's SMS, newest first.")
    service.query(ListTemplates, reads.templates, "The organisation's templates.")
