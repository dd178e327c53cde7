"""The command pipeline every service runs its handlers through.

Guarantee: a command takes effect exactly once, is acked only after its effect
committed, and every caller who waits gets an answer.

    message ─► meta (id, org, user) ─► an event's data parsed as its model (Step.given)
               ─► BEGIN (shared with the commands beside it: group_commit.py)
                 handler ─► effect
                 inbox.record(id, reply) + outbox events ── known id ──► ROLLBACK ─► stored reply (replayed) ─┐
               COMMIT ─► reply to reply_to ─► ack ◄───────────────────────────────────────────────────────────┘
    Rejected (an event's data that is not its model too) ─► ROLLBACK; the refusal is recorded in its own
               transaction, like any answer
    NeedsLookup ─► ROLLBACK, ask the other service (no transaction open) ─► run again
    other error ─► retry.<delay> queue (attempt+1) ─► ack;  last attempt ─► parked + failure reply ─► ack

Hostile until parsed: a property or header that cannot be read is answered 422 `/problems/invalid` (when the
message names a reply_to) and acked; a command only the platform may send, from anyone else, 403. Nothing
is ever left unacknowledged: a retry or a park that cannot be written gives the message back to its queue
(redelivered a moment later), and anything unexpected parks it with its reason. Every message is held
under a deadline (shared/stalls.py): a stuck one makes the service answer not ready.
"""

import asyncio
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Generic, TypeVar, cast

import aio_pika
import asyncpg
from aio_pika.abc import HeadersType
from faststream import BaseMiddleware
from faststream.rabbit import RabbitBroker, RabbitMessage
from pydantic import BaseModel, ValidationError

from shared import db, inbox, logging, metrics, outbox, topology, tracing
from shared.contracts.envelope import Event, EventData, Header, Reply
from shared.group_commit import GroupCommit
from shared.identity import BrokerIdentity
from shared.messages import IGNORED, Effect, Handler, Meta, NeedsLookup, Outcome, properties
from shared.problems import (
    CommandParked,
    Forbidden,
    InvalidMessage,
    Rejected,
    Unavailable,
    field_errors,
    invalid,
)
from shared.retry import Pending, RetryPolicy
from shared.stalls import Held
from shared.topology import ServiceTopology

log = logging.get("consumer")
GIVE_BACK_AFTER = 1.0  # seconds a message that could not be retried or parked waits before it goes back
C = TypeVar("C")


class Commands:
    def __init__(
        self,
        broker: RabbitBroker,
        pool: asyncpg.Pool,
        topology: ServiceTopology,
        identity: BrokerIdentity,
        own_user: str,
        deadline: float,
        crash_after_commit: str = "",
    ):
        """`identity` says who may act for which organisation; `own_user` is this service's broker user
        (the `user_id` of what it publishes: retries, parked copies, events); `deadline`: how long a message
        may be held before the service says it is stalled."""
        self.broker, self.pool, self.topology = broker, pool, topology
        self.identity, self.own_user = identity, own_user
        self.policy = RetryPolicy(topology.retry_delays)
        self.held = Held(deadline)
        # Set by the service once it has its pool and connections, before it consumes.
        self.replies: aio_pika.abc.AbstractChannel = None  # type: ignore[assignment]  # set before it consumes
        self.group: GroupCommit = None  # type: ignore[assignment]  # set before it consumes
        self._crash_after_commit = crash_after_commit

    async def handle(self, msg: RabbitMessage, command: BaseModel, step: "Step[Any]") -> None:
        """A command, run by the step's handler in its transaction, or by its effect (acts first, then records)."""
        try:
            meta = Meta.of(msg, self.identity, self.policy.max_attempts)
            if getattr(command, "INTERNAL", False) and not self.identity.is_platform(msg.raw_message.user_id):
                raise Forbidden(
                    f"{meta.command} is the platform's own command: broker user "
                    f"{msg.raw_message.user_id!r} may not send it"
                )
        except Rejected as exc:
            return await self.refuse(msg, exc)
        await self._run(msg, meta, command, step)

    async def handle_event(self, msg: RabbitMessage, event: Event, step: "Step[Any]") -> None:
        """An event this service subscribed to (`step.data` its model): at most one effect per event id,
        retried like a command. Deduped, fingerprinted and parked as the envelope it came in."""
        try:
            meta = Meta.of_event(msg, event, self.identity, self.policy.max_attempts)
        except Rejected as exc:
            return await self.refuse(msg, exc)
        await self._run(msg, meta, event, step)

    async def _run(self, msg: RabbitMessage, meta: Meta, command: BaseModel, step: "Step[Any]") -> None:
        started = time.monotonic()
        with logging.bind(command_id=meta.message_id, correlation_id=meta.correlation_id, org_id=meta.org_id):
            try:
                reply, replayed = await self._execute(meta, command, step)
            except Rejected as exc:
                reply, replayed = exc.reply(), False
            except Pending as exc:
                if exc.reply is not None and not meta.retried:  # not heard from us yet
                    await self.reply(meta.reply_to, meta.correlation_id, exc.reply, attempt=meta.attempt)
                return await self._retry_or_park(msg, meta, exc, step)
            except Exception as exc:  # noqa: BLE001  (transient by definition: see shared.retry)
                return await self._retry_or_park(msg, meta, exc, step)
            if self._crash_after_commit == meta.command:
                os.kill(os.getpid(), signal.SIGKILL)  # test hook: die between commit and ack
            log.info("command.done", command=meta.command, status=reply.status, replayed=replayed, attempt=meta.attempt)
            outcome = "replayed" if replayed else "refused" if reply.status >= 400 else "done"
            self._count(meta.command, outcome, started)
            await self.reply(meta.reply_to, meta.correlation_id, reply, replayed=replayed, attempt=meta.attempt)
            await _ack(msg)

    async def _execute(self, meta: Meta, message: BaseModel, step: "Step[Any]") -> tuple[Reply, bool]:
        print_ = inbox.fingerprint(meta.command, message)
        try:
            try:
                subject, runs = step.given(message)  # once per delivery: an event's data parsed as its model
                # What it needs from another service is asked between tries, never inside a transaction.
                reply = await NeedsLookup.looked_up(lambda: self._try(meta, subject, runs, print_))
                return reply, False
            except Rejected as refusal:  # the handler's writes are rolled back; the refusal is the answer to keep
                async with db.transaction(self.pool) as conn:
                    await inbox.record(conn, meta.message_id, meta.org_id, meta.command, print_, refusal.reply())
                return refusal.reply(), False
        except inbox.AlreadyDone:
            async with self.pool.acquire() as conn:
                return await inbox.stored(conn, meta.message_id, meta.org_id, print_), True

    async def _try(self, meta: Meta, subject: Any, step: "Step[Any]", print_: str) -> Reply:
        """`subject`: what the handler (or effect) is given, the command or an event's typed data."""
        try:
            trace = tracing.carrier()  # here, in the command's own task: its batch may be written by another
            if isinstance(step.run, Effect):  # act first, then record as a handler would
                result = await step.run.perform(self.pool, subject, meta)
                run: Handler[Any] = partial(_record, step.run, result)
            else:
                run = step.run

            async def writes(conn: asyncpg.Connection) -> Reply:
                outcome = await run(conn, subject, meta)
                await inbox.record(
                    conn, meta.message_id, meta.org_id, meta.command, print_, outcome.reply, outcome.events, trace
                )
                return outcome.reply

            return await self.group.run(writes)  # in a transaction shared with the commands beside it
        except asyncpg.DataError as exc:  # a value the database cannot hold (a NUL character...): bad input
            raise invalid(f"a value in the command cannot be stored: {exc}") from exc

    async def _retry_or_park(self, msg: RabbitMessage, meta: Meta, exc: Exception, step: "Step[Any]") -> None:
        raw = msg.raw_message
        used = getattr(exc, "attempted", True)  # a Pending that tried nothing waits without using an attempt
        # Sent again as this service's own broker user, with the organisation it was found to act for.
        headers: HeadersType = {
            **meta.carried(),
            Header.ATTEMPT: meta.attempt + used,
            Header.LAST_ERROR: repr(exc)[:500],
        }
        common: dict[str, Any] = dict(
            message_id=meta.message_id,
            correlation_id=meta.correlation_id,
            reply_to=meta.reply_to,
            content_type=raw.content_type,
            persist=True,
            user_id=self.own_user,
        )
        delay = self.policy.delay(meta.attempt if used else max(meta.attempt - 1, 1))
        try:
            if delay is not None:
                tier, wait = delay
                log.warning(
                    "command.retry_scheduled",
                    command=meta.command,
                    attempt=meta.attempt,
                    delay=wait.total_seconds(),
                    error=repr(exc),
                )
                await self.broker.publish(
                    raw.body, routing_key=self.topology.delay(tier).name, expiration=wait, headers=headers, **common
                )
                metrics.RETRIES.labels(self.topology.service, meta.command).inc()
                self._count(meta.command, "pending" if isinstance(exc, Pending) else "retried")
            else:
                await self._park(msg, meta, exc, step, headers, common)
        except Exception as failure:  # noqa: BLE001  (the broker or the database away: try it all again later)
            return await self.give_back(msg, f"could not {'retry' if delay else 'park'} it: {failure!r}")
        await _ack(msg)

    async def _park(
        self,
        msg: RabbitMessage,
        meta: Meta,
        exc: Exception,
        step: "Step[Any]",
        headers: HeadersType,
        common: dict[str, Any],
    ) -> None:
        """Record the failure (the answer the status resource gives), then move the message to the parking queue.
        Either failing raises: the message goes back to its queue, to be parked when it can be."""
        headers |= {Header.PARKED_REASON: repr(exc)[:500], Header.PARKED_AT: datetime.now(UTC).isoformat()}
        failure = CommandParked(
            f"the command failed {meta.attempt} times and was parked for an operator to replay: {exc!r}"[:1000]
        ).reply()
        async with db.transaction(self.pool) as conn:
            await inbox.park(conn, meta.message_id, meta.org_id, failure)
            if step.effect is not None:  # an Effect says what its parked attempt now is
                await outbox.add(conn, await step.effect.parked(conn, meta))
        await self.broker.publish(
            msg.raw_message.body, routing_key=self.topology.parked.name, headers=headers, **common
        )
        log.error("command.parked", command=meta.command, attempts=meta.attempt, error=repr(exc))
        metrics.PARKED.labels(self.topology.service, meta.command).inc()
        self._count(meta.command, "parked")
        await self.reply(meta.reply_to, meta.correlation_id, failure, attempt=meta.attempt)

    async def give_back(self, msg: RabbitMessage, why: str) -> None:
        """Back to its queue a moment later (redelivered, to this or another instance): never held unacked."""
        log.warning("command.given_back", command_id=logging.printable(msg.raw_message.message_id), reason=why[:500])
        self._count("_given_back", "given_back")
        await asyncio.sleep(GIVE_BACK_AFTER)  # not at once: what failed (the broker, the database) needs a moment
        with suppress(Exception):  # a channel that is gone returns its unacked messages by itself
            await msg.raw_message.nack(requeue=True)

    async def unexpected(self, msg: RabbitMessage, exc: Exception) -> None:
        """Something outside the pipeline's own handling failed (a bug, a framework error): the message is
        parked with its reason (a query is dropped: its caller asks again), never left unacknowledged."""
        raw = msg.raw_message
        log.error(
            "consumer.unexpected_error",
            routing_key=logging.printable(raw.routing_key),
            command_id=logging.printable(raw.message_id),
            error=repr(exc)[:500],
            exc_info=exc,
        )
        self._count("_unexpected", "parked")
        if raw.exchange == topology.QUERIES:
            return await _ack(msg)
        try:
            headers: HeadersType = {
                Header.PARKED_REASON: f"unexpected: {exc!r}"[:500],
                Header.PARKED_AT: datetime.now(UTC).isoformat(),
                Header.ROUTING_KEY: logging.printable(raw.routing_key),
            }
            await self.broker.publish(
                raw.body,
                routing_key=self.topology.parked.name,
                headers=headers,
                message_id=logging.printable(raw.message_id),
                content_type="application/json",
                persist=True,
                user_id=self.own_user,
            )
        except Exception as failure:  # noqa: BLE001
            return await self.give_back(msg, f"could not park it: {failure!r}")
        await _ack(msg)

    def _count(self, command: str, outcome: str, started: float | None = None) -> None:
        metrics.COMMANDS.labels(self.topology.service, command, outcome).inc()
        if started is not None:
            metrics.COMMAND_SECONDS.labels(self.topology.service, command).observe(time.monotonic() - started)

    async def answer(self, msg: RabbitMessage, query: Callable[[asyncpg.Connection, str], Awaitable[Reply]]) -> None:
        """Answer a query. Queries change nothing: neither deduped nor retried (the caller asks again)."""
        raw = msg.raw_message
        try:
            org = self.identity.org_of(raw.user_id, properties(raw, self.policy.max_attempts).org)

            async def run() -> Reply:  # a look-up is asked with no connection held
                async with self.pool.acquire() as conn:
                    return await query(conn, str(org))

            reply = await NeedsLookup.looked_up(run)
        except Rejected as exc:
            reply = exc.reply()
        except asyncpg.DataError as exc:
            reply = invalid(f"a value in the query cannot be used: {exc}").reply()
        except Exception as exc:  # noqa: BLE001  (a query that failed is answered 503: its caller asks again)
            log.warning("query.failed", routing_key=logging.printable(raw.routing_key), error=repr(exc))
            reply = Unavailable("the query failed; try again").reply()
        await self.reply(raw.reply_to, raw.correlation_id, reply)
        await _ack(msg)

    def unknown(self, msg: RabbitMessage, what: str) -> Rejected:
        """A message no handler took: a header that cannot be read (an odd x-routing-key...) is said first."""
        return self._unreadable_properties(msg) or invalid(
            f"unknown {what} {logging.printable(msg.raw_message.routing_key)}"
        )

    def unreadable(self, msg: RabbitMessage, exc: ValueError) -> Rejected:
        """Why a body could not be read: its properties first (a content type that is not JSON makes any body
        unreadable), else what is wrong with the body itself."""
        if (refusal := self._unreadable_properties(msg)) is not None:
            return refusal
        if isinstance(exc, ValidationError):
            return invalid(
                "the message body does not match its contract",
                field_errors(exc, skip=1),
            )
        return invalid(f"the message body is not valid JSON: {exc}"[:500])

    def _unreadable_properties(self, msg: RabbitMessage) -> InvalidMessage | None:
        """Only on a path that refuses anyway: the pipeline reads them once, in Meta.of."""
        try:
            properties(msg.raw_message, self.policy.max_attempts)
        except InvalidMessage as refusal:
            return refusal
        return None

    async def refuse(self, msg: RabbitMessage, exc: Rejected) -> None:
        raw = msg.raw_message
        org = raw.headers.get(Header.ORG) if isinstance(raw.headers, dict) else None
        log.info(
            "command.refused",
            routing_key=logging.printable(raw.routing_key),
            detail=exc.body["detail"][:500],
            command_id=logging.printable(raw.message_id),
            correlation_id=logging.printable(raw.correlation_id),
            org_id=logging.printable(org),
        )
        self._count("_invalid", "invalid")  # not its routing key: anyone can make up those (label cardinality)
        await self.reply(raw.reply_to, raw.correlation_id, exc.reply())
        await _ack(msg)

    async def reply(
        self, reply_to: object, correlation_id: object, reply: Reply, *, replayed: bool = False, attempt: int = 1
    ) -> None:
        """Straight on a channel without publisher confirms, past FastStream's publish path: a lost reply
        costs nothing but a 202 (the answer is in the inbox, and the status resource gives it). Never raises:
        a reply_to that names nothing, or that cannot be one, is no reason to keep the message."""
        if not reply_to or not isinstance(reply_to, str) or len(reply_to) > 255:
            return
        headers: HeadersType = {Header.REPLAYED: "true" if replayed else "false", Header.ATTEMPT: attempt}
        try:
            await self.replies.default_exchange.publish(
                aio_pika.Message(
                    json.dumps(reply.model_dump(mode="json")).encode(),
                    correlation_id=correlation_id if isinstance(correlation_id, str) else None,
                    headers=headers,
                    content_type="application/json",
                ),
                reply_to,
                mandatory=False,
            )
        except Exception as exc:  # noqa: BLE001  (the channel closed under us: the caller will ask for the answer)
            log.warning("reply.failed", reply_to=logging.printable(reply_to), error=repr(exc)[:300])

    def middleware(self) -> type[BaseMiddleware]:
        """Around every message: held under the deadline (shared/stalls.py); a body that is not JSON or does
        not match its contract answered 422 (and acked); anything else parked, never left unacknowledged."""
        commands = self

        class Guard(BaseMiddleware):
            async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: Any) -> Any:
                with commands.held.holding(msg.raw_message):
                    try:
                        return await call_next(msg)
                    except (ValidationError, ValueError) as exc:  # the body: not JSON, not UTF-8, not the contract
                        await commands.refuse(msg, commands.unreadable(msg, exc))
                    except Exception as exc:  # noqa: BLE001
                        await commands.unexpected(msg, exc)

        return Guard


@dataclass(frozen=True)
class Step(Generic[C]):
    """What runs a message: `run`, a handler (in its transaction) or an effect (acts first, then records).

    For an event, `data` is its model: `run` is given the event's data parsed as that (a `C`), once per
    delivery; data that is not that model is a refusal, stored and acked like any. `when(data)` false: nothing
    to do, answered `IGNORED` (stored too: the event is still done once)."""

    run: Handler[C] | Effect[C, Any]
    data: type[EventData] | None = None
    when: Callable[[C], bool] | None = None

    def given(self, message: BaseModel) -> tuple[C, "Step[C]"]:
        """What the handler is given (the command itself, or the event's typed data), and what runs for it."""
        if self.data is None:
            return cast(C, message), self
        envelope = cast(Event, message)
        try:
            data = cast(C, self.data.model_validate(envelope.data))
        except ValidationError as exc:
            raise invalid(
                f"the data of this {envelope.type} event does not match its contract",
                field_errors(exc, within=("data",)),
            ) from None
        if self.when is not None and not self.when(data):
            return data, NOTHING_TO_DO
        return data, self

    @property
    def effect(self) -> Effect[C, Any] | None:
        return self.run if isinstance(self.run, Effect) else None


async def _nothing_to_do(conn: asyncpg.Connection, data: Any, meta: Meta) -> Outcome:
    return Outcome(IGNORED)


NOTHING_TO_DO: Step[Any] = Step(_nothing_to_do)


async def _record(effect: Effect[Any, Any], result: Any, conn: asyncpg.Connection, command: Any, meta: Meta) -> Outcome:
    return await effect.record(conn, command, meta, result)


async def _ack(msg: RabbitMessage) -> None:
    with suppress(Exception):  # a channel that is gone returns the message itself: it is redelivered, and deduped
        await msg.ack()
