"""Sending an SMS exactly once: the attempt is committed before the provider is called.

    perform (no transaction open while the provider is called):
      tx: find this command's row ── none ──► validate, insert it (queued)
      row final? ──► nothing to do (a redelivery)          number opted out since? ──► refused, nothing sent
      breaker open? ──► Pending: "queued", waits in the delay queues (no attempt used)
      row "sending" (an attempt was started)?
          started less than a lease ago ──► in progress elsewhere, or its answer may still come: wait
          older ──► ask the provider: the Messages to that number from our sender created in that attempt's
                    window (queued ones too: no DateSent filter), that body as Twilio may have rewritten it
                    (Smart Encoding, trial prefix); the oldest whose sid no other SMS holds ──► adopt its sid
      tx: claim the attempt by compare-and-set on its start time (committed) ──► provider.send
    record (the command's transaction, with the inbox row): sent / failed / opted out, its event, the answer

Whoever loses the compare-and-set waits: two deliveries of one command never
both call the provider. A crash after the provider accepted, or a timeout whose
message the provider accepted late, is healed by the question asked once the
lease is over: never two SMS. A question that fails leaves the SMS "sending"
(asked again on the next delivery): only a definite answer to a send makes it
"queued" again.

A `Sender[C]` sends the SMS of a command-shaped `C` (it names its lead; `compose` writes its text once, when
its row is made): `sms.send`'s (`written`), an appointment's confirmation, a campaign target's.
"""

import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar
from uuid import uuid4

import asyncpg

from services.sms import domain, repository
from services.sms.domain import SendOutcome
from services.sms.provider import OptedOut, PermanentFailure, Provider, TransientFailure
from services.sms.segments import segments
from shared import db, logging
from shared.breaker import CircuitBreaker
from shared.contracts.envelope import Event, EventData, Reply
from shared.contracts.sms import (
    OptOutChanged,
    SendSms,
    SmsFailed,
    SmsReply,
    SmsSent,
    SmsStatus,
    SmsView,
)
from shared.lead_directory import Directory
from shared.messages import Effect, Meta, Outcome
from shared.problems import ProviderRefused, not_found
from shared.retry import Pending

log = logging.get("sms.sending")
RECONCILE_MARGIN = timedelta(seconds=10)  # clock skew between us and the provider


class AttemptInProgress(Exception):
    """Another delivery of this command is sending right now, or a started attempt may still be
    answered: wait (without using up an attempt), then look again."""


@dataclass(frozen=True)
class Result:
    row: asyncpg.Record
    outcome: SendOutcome
    sid: str | None = None  # the provider's, of a sent SMS
    code: int | None = None
    reason: str = ""


class ToLead(Protocol):
    """What an SMS is sent for: a command-shaped value that names its lead."""

    @property
    def leadId(self) -> str: ...


C = TypeVar("C", bound=ToLead)
# The text of a `C`'s SMS, from its lead (the directory's row); 404 / 422 when it cannot be written.
Compose = Callable[[asyncpg.Connection, C, Meta, asyncpg.Record], Awaitable[str]]


@dataclass(frozen=True)
class Outbound:
    """What every SMS goes out through: the leads it may go to, the provider behind its breaker, where the
    provider calls back, and how long a started attempt may still be answered."""

    directory: Directory
    provider: Provider
    breaker: CircuitBreaker
    status_callback: str | None
    lease: timedelta


def answer(row: asyncpg.Record, status: SmsStatus | None = None) -> Reply:
    view = SmsView(id=row["id"], status=status or row["status"], sentAt=row["sent_at"])
    return Reply(status=200, body=SmsReply(sms=view).model_dump(mode="json"))


async def written(conn: asyncpg.Connection, cmd: SendSms, meta: Meta, lead: asyncpg.Record) -> str:
    """The text of `sms.send`: its message, or its template filled from the lead (404 / 422: unknown
    template or field)."""
    if cmd.templateId is None:
        return domain.checked_message(cmd.message or "")
    template = await repository.template(conn, meta.org_id, cmd.templateId)
    if template is None:
        raise not_found("template", cmd.templateId)
    return domain.render(template["body"], lead["name"], lead["phone"])


class Sender(Effect[C, Result]):
    """The `Effect` that sends one SMS per message id: `sms.send`'s (a `Sender[SendSms]`), and the one
    inside the confirmation and campaign senders."""

    def __init__(self, out: Outbound, compose: Compose[C], crash_after_provider: bool = False):
        self.out, self.compose, self._crash = out, compose, crash_after_provider

    async def perform(self, pool: asyncpg.Pool, command: C, meta: Meta) -> Result:
        row = await self._prepare(pool, command, meta)
        if row["status"] in domain.FINAL:
            return Result(row, SendOutcome.done)
        if await self._opted_out(pool, row):
            return Result(row, SendOutcome.stopped, reason="the number opted out before the SMS could be sent")
        if not self.out.breaker.allow():
            raise Pending(
                answer(row, SmsStatus.queued), "circuit breaker open: the provider is not called", attempted=False
            )
        started = time.monotonic()
        try:
            result = await self._deliver(pool, row)
        except TransientFailure as exc:
            self.out.breaker.record_failure(time.monotonic() - started)
            await self._after_failure(pool, row, exc)
            raise Pending(answer(row, SmsStatus.queued), f"provider unavailable: {exc}") from exc
        except AttemptInProgress as exc:  # the answer comes from the attempt under way: no interim one
            self.out.breaker.release()
            raise Pending(None, str(exc), attempted=False) from exc
        except BaseException:
            self.out.breaker.release()  # not the provider's doing: nothing to judge it by
            raise
        self.out.breaker.record_success(time.monotonic() - started)  # a refusal too: the provider answered
        if self._crash and result.outcome == SendOutcome.sent:
            os.kill(os.getpid(), signal.SIGKILL)  # test hook: die after the provider accepted, before recording
        return result

    async def _prepare(self, pool: asyncpg.Pool, command: C, meta: Meta) -> asyncpg.Record:
        async with db.transaction(pool) as conn:
            row = await repository.by_command(conn, meta.org_id, meta.message_id)
            if row is not None:
                return row
            lead_id = command.leadId
            lead = await self.out.directory.find(conn, meta.org_id, lead_id)
            if lead is None:
                raise not_found("lead", lead_id)
            if await repository.is_opted_out(conn, lead["phone"]):
                raise domain.opted_out(lead_id)
            body = await self.compose(conn, command, meta, lead)
            encoding, count = segments(body)
            return await repository.insert(
                conn, uuid4(), meta.org_id, lead_id, meta.message_id, lead["phone"], body, encoding, count
            )

    async def _opted_out(self, pool: asyncpg.Pool, row: asyncpg.Record) -> bool:
        async with pool.acquire() as conn:
            return await repository.is_opted_out(conn, row["to_phone"])

    async def _deliver(self, pool: asyncpg.Pool, row: asyncpg.Record) -> Result:
        seen = row["attempt_started_at"]
        if row["status"] == SmsStatus.sending:  # an attempt was started, and nobody recorded how it ended
            if seen > datetime.now(UTC) - self.out.lease:
                raise AttemptInProgress(f"an attempt started at {seen.isoformat()} may still be answered")
            sid = await self._reconcile(pool, row, seen)
            if sid is not None:
                log.warning("sms.reconciled", sms_id=row["id"], sid=sid)
                return Result(row, SendOutcome.sent, sid=sid)
        async with db.transaction(pool) as conn:  # committed before the call: a redelivery will look first
            if not await repository.claim_attempt(conn, row["id"], seen, datetime.now(UTC)):
                raise AttemptInProgress("another delivery of this command claimed the attempt")
        try:
            sent = await self.out.provider.send(row["to_phone"], row["body"], self.out.status_callback)
        except OptedOut as exc:
            return Result(row, SendOutcome.opted_out, code=exc.code, reason=str(exc))
        except PermanentFailure as exc:
            return Result(row, SendOutcome.failed, code=exc.code, reason=str(exc))
        return Result(row, SendOutcome.sent, sid=sent.sid)

    async def _reconcile(self, pool: asyncpg.Pool, row: asyncpg.Record, seen: datetime) -> str | None:
        """The sid of the message Twilio accepted for the attempt started at `seen`, if it did: the oldest
        of those it lists for that number and body in the attempt's window that no other SMS holds."""
        try:
            found = await self.out.provider.find_sent(
                row["to_phone"], seen - RECONCILE_MARGIN, row["body"], until=seen + self.out.lease + RECONCILE_MARGIN
            )
        except TransientFailure as exc:  # the question failed: it says nothing of the attempt, still unknown
            raise TransientFailure(
                f"cannot ask Twilio about the attempt started at {seen.isoformat()}: {exc.reason}",
                exc.code,
                maybe_accepted=True,
            ) from exc
        if not found:
            return None
        async with pool.acquire() as conn:
            taken = await repository.sids_taken(conn, row["id"], found)
        return next((sid for sid in found if sid not in taken), None)

    async def _after_failure(self, pool: asyncpg.Pool, row: asyncpg.Record, exc: TransientFailure) -> None:
        """A definite "not accepted" (429, 5xx) makes the SMS queued again; an ambiguous failure (timeout,
        connection lost) leaves it "sending", so that no one sends it again before the lease is over."""
        if not exc.maybe_accepted:
            async with db.transaction(pool) as conn:
                await repository.set_status(conn, row["id"], SmsStatus.queued)

    async def record(self, conn: asyncpg.Connection, command: C, meta: Meta, result: Result) -> Outcome:
        row = result.row
        if result.outcome == SendOutcome.done:
            return Outcome(answer(row))
        if result.outcome == SendOutcome.sent:
            assert result.sid is not None  # a sent SMS has the provider's sid (_deliver)
            now = datetime.now(UTC)
            row = await repository.set_status(conn, row["id"], SmsStatus.sent, sid=result.sid, sent_at=now)
            data = SmsSent(
                smsId=row["id"], leadId=row["lead_id"], providerSid=result.sid, segments=row["segments"], sentAt=now
            )
            return Outcome(answer(row), [event(row, meta, data)])
        row = await repository.set_status(conn, row["id"], SmsStatus.failed, error_code=result.code)
        events = [
            event(
                row,
                meta,
                SmsFailed(smsId=row["id"], leadId=row["lead_id"], errorCode=result.code, reason=result.reason),
            )
        ]
        if result.outcome == SendOutcome.stopped:
            refusal = domain.opted_out(row["lead_id"])
            return Outcome(Reply(status=409, body={**refusal.body, "smsId": row["id"]}), events)
        if result.outcome == SendOutcome.opted_out:
            await repository.set_opt_out(conn, row["to_phone"], True, f"provider {result.code}")
            events.append(
                event(
                    row,
                    meta,
                    OptOutChanged(
                        leadId=row["lead_id"], phone=row["to_phone"], optedOut=True, keyword=f"provider {result.code}"
                    ),
                )
            )
            refusal = domain.opted_out(row["lead_id"])
            return Outcome(Reply(status=409, body={**refusal.body, "smsId": row["id"], "code": result.code}), events)
        refused = ProviderRefused(f"the provider refused the SMS: {result.reason}", smsId=row["id"], code=result.code)
        return Outcome(refused.reply(), events)

    async def parked(self, conn: asyncpg.Connection, meta: Meta) -> list[Event]:
        """The send was given up (parked): its SMS is failed, not queued forever. A replay of the parked
        command then answers from the row, which is final: the operator sends a new SMS if still wanted."""
        row = await repository.by_command(conn, meta.org_id, meta.message_id)
        if row is None or row["status"] in domain.FINAL or row["status"] == SmsStatus.sending:
            return []  # nothing recorded, already final, or an attempt whose outcome is unknown: leave it
        row = await repository.set_status(conn, row["id"], SmsStatus.failed)
        return [
            event(
                row,
                meta,
                SmsFailed(
                    smsId=row["id"],
                    leadId=row["lead_id"],
                    errorCode=None,
                    reason="gave up after the last retry (parked)",
                ),
            )
        ]


def event(row: asyncpg.Record, meta: Meta, data: EventData) -> Event:
    """An SMS event belongs to the SMS's organisation (a provider callback carries none of its own)."""
    return meta.event(data, org_id=row["org_id"])
