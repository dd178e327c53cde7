"""Sending an SMS exactly once: the attempt is committed before the provider is called.

    perform (no transaction open while the provider is called):
      tx: find the row of this command ── none ──► validate, insert it (queued)
      row final?  ──► nothing to do (a redelivery)
      breaker open? ──► Pending: "queued", waits in the delay queues (no attempt used)
      row had an attempt? ──► ask the provider whether it was sent (Messages list); yes ──► adopt the sid
      tx: mark the attempt started (committed)  ──►  provider.send
    record (the command's transaction, with the inbox row): sent / failed / opted out, its event, the answer

A crash after the provider accepted and before `record` committed is healed by
the redelivery's question to the provider: it never sends twice.
"""
import os
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg

from services.sms import domain, repository
from services.sms.provider import OptedOut, PermanentFailure, Provider, TransientFailure
from services.sms.segments import segments
from shared import db, logging
from shared.breaker import CircuitBreaker
from shared.contracts.envelope import Event, Reply
from shared.contracts.sms import (
    OptOutChanged,
    SendSms,
    SmsFailed,
    SmsReply,
    SmsSent,
    SmsView,
)
from shared.lead_directory import Directory
from shared.messages import Meta, Outcome
from shared.retry import Pending, Rejected, not_found

log = logging.get("sms.sending")
RECONCILE_MARGIN = timedelta(seconds=30)  # clock skew between us and the provider


class AttemptElsewhere(Exception):
    """Another delivery of the same command is sending right now: retried, it will find the outcome."""


@dataclass(frozen=True)
class Result:
    row: asyncpg.Record
    outcome: str  # "sent", "failed", "opted_out" or "done" (the row was final already)
    sid: str | None = None
    code: int | None = None
    reason: str = ""


def answer(row: asyncpg.Record, status: str | None = None) -> Reply:
    view = SmsView(id=row["id"], status=status or row["status"], sentAt=row["sent_at"])
    return Reply(status=200, body=SmsReply(sms=view).model_dump(mode="json"))


class Sender:
    """The `Effect` behind `sms.send` (and the confirmation SMS of an appointment)."""

    def __init__(self, directory: Directory, provider: Provider, breaker: CircuitBreaker,
                 status_callback: str | None, crash_after_provider: bool = False):
        self.directory, self.provider, self.breaker = directory, provider, breaker
        self.status_callback, self._crash = status_callback, crash_after_provider

    async def compose(self, conn: asyncpg.Connection, command: Any, meta: Meta, lead: asyncpg.Record) -> str:
        """The text to send; 404 / 422 for an unknown template or field."""
        cmd: SendSms = command
        if cmd.templateId is None:
            return domain.checked_message(cmd.message or "")
        template = await repository.template(conn, meta.org_id, cmd.templateId)
        if template is None:
            raise not_found("template", cmd.templateId)
        return domain.render(template["body"], lead["name"], lead["phone"])

    def lead_of(self, command: Any) -> str:
        return command.leadId

    async def perform(self, pool: asyncpg.Pool, command: Any, meta: Meta) -> Result:
        row = await self._prepare(pool, command, meta)
        if row["status"] in domain.FINAL:
            return Result(row, "done")
        if not self.breaker.allow():
            raise Pending(answer(row, "queued"), "circuit breaker open: the provider is not called", attempted=False)
        started = time.monotonic()
        try:
            result = await self._deliver(pool, row)
        except TransientFailure as exc:
            self.breaker.record_failure(time.monotonic() - started)
            async with db.transaction(pool) as conn:  # what the history shows until the retry
                await repository.set_status(conn, row["id"], "queued")
            raise Pending(answer(row, "queued"), f"provider unavailable: {exc}") from exc
        except BaseException:
            self.breaker.record_success(0.0)  # not the provider's failure; the breaker's permit is given back
            raise
        self.breaker.record_success(time.monotonic() - started)  # a refusal too: the provider answered
        if self._crash and result.outcome == "sent":
            os.kill(os.getpid(), signal.SIGKILL)  # test hook: die after the provider accepted, before recording
        return result

    async def _prepare(self, pool: asyncpg.Pool, command: Any, meta: Meta) -> asyncpg.Record:
        async with db.transaction(pool) as conn:
            row = await repository.by_command(conn, meta.message_id)
            if row is not None:
                return row
            lead_id = self.lead_of(command)
            lead = await self.directory.find(conn, meta.org_id, lead_id)
            if lead is None:
                raise not_found("lead", lead_id)
            if await repository.is_opted_out(conn, lead["phone"]):
                raise domain.opted_out(lead_id)
            body = await self.compose(conn, command, meta, lead)
            encoding, count = segments(body)
            return await repository.insert(conn, uuid4(), meta.org_id, lead_id, meta.message_id, lead["phone"], body,
                                           encoding, count)

    async def _deliver(self, pool: asyncpg.Pool, row: asyncpg.Record) -> Result:
        if row["attempt_started_at"] is not None:  # an earlier attempt may have reached the provider
            sid = await self.provider.find_sent(row["to_phone"], row["attempt_started_at"] - RECONCILE_MARGIN,
                                                row["body"])
            if sid is not None:
                log.warning("sms.reconciled", sms_id=row["id"], sid=sid)
                return Result(row, "sent", sid=sid)
        async with db.transaction(pool) as conn:  # committed before the call: a redelivery will look first
            if not await repository.claim_attempt(conn, row["id"], row["attempt_started_at"], datetime.now(UTC)):
                raise AttemptElsewhere(row["id"])
        try:
            sent = await self.provider.send(row["to_phone"], row["body"], self.status_callback)
        except OptedOut as exc:
            return Result(row, "opted_out", code=exc.code, reason=str(exc))
        except PermanentFailure as exc:
            return Result(row, "failed", code=exc.code, reason=str(exc))
        return Result(row, "sent", sid=sent.sid)

    async def record(self, conn: asyncpg.Connection, command: Any, meta: Meta, result: Result) -> Outcome:
        row = result.row
        if result.outcome == "done":
            return Outcome(answer(row))
        if result.outcome == "sent":
            now = datetime.now(UTC)
            row = await repository.set_status(conn, row["id"], "sent", sid=result.sid, sent_at=now)
            data = SmsSent(smsId=row["id"], leadId=row["lead_id"], providerSid=result.sid, segments=row["segments"],
                           sentAt=now)
            return Outcome(answer(row), [event(row, meta, "sms.sent", data)])
        row = await repository.set_status(conn, row["id"], "failed", error_code=result.code)
        events = [event(row, meta, "sms.failed", SmsFailed(smsId=row["id"], leadId=row["lead_id"],
                                                              errorCode=result.code, reason=result.reason))]
        if result.outcome == "opted_out":
            await repository.set_opt_out(conn, row["to_phone"], True, f"provider {result.code}")
            events.append(event(row, meta, "sms.opt_out_changed", OptOutChanged(
                leadId=row["lead_id"], phone=row["to_phone"], optedOut=True, keyword=f"provider {result.code}")))
            refusal = domain.opted_out(row["lead_id"])
            return Outcome(Reply(status=409, body={**refusal.body, "smsId": row["id"], "code": result.code}), events)
        refusal = Rejected(422, "SMS refused by the provider", f"the provider refused the SMS: {result.reason}",
                           "/problems/sms-refused", smsId=row["id"], code=result.code)
        return Outcome(refusal.reply(), events)


def event(row: asyncpg.Record, meta: Meta, type_: str, data: Any) -> Event:
    """An SMS event belongs to the SMS's organisation (a provider callback carries none of its own)."""
    return Event(type=type_, org_id=row["org_id"], command_id=meta.message_id, correlation_id=meta.correlation_id,
                 data=data.model_dump(mode="json", by_alias=True))
