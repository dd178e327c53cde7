"""The command pipeline every service runs its handlers through.

Guarantee: a command takes effect exactly once, is acked only after its effect
committed, and every caller who waits gets an answer.

    message ─► meta (id, org, user) ─► BEGIN (shared with the commands beside it: group_commit.py)
                 handler ─► effect
                 inbox.record(id, reply) + outbox events ── known id ──► ROLLBACK ─► stored reply (replayed) ─┐
               COMMIT ─► reply to reply_to ─► ack ◄───────────────────────────────────────────────────────────┘
    Rejected ─► ROLLBACK; the refusal is recorded in its own transaction, like any answer
    other error ─► retry.<delay> queue (attempt+1) ─► ack;  last attempt ─► parked + failure reply ─► ack
"""
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import aio_pika
import asyncpg
from faststream import BaseMiddleware
from faststream.rabbit import RabbitBroker, RabbitMessage
from pydantic import BaseModel, ValidationError

from shared import db, inbox, logging, metrics, outbox, tracing
from shared.contracts.envelope import Event, Header, Reply, problem
from shared.group_commit import GroupCommit
from shared.identity import BrokerIdentity
from shared.messages import Effect, Handler, Meta, Outcome
from shared.problems import Rejected, invalid
from shared.retry import Pending, RetryPolicy
from shared.topology import ServiceTopology

log = logging.get("consumer")


class Commands:
    def __init__(self, broker: RabbitBroker, pool: asyncpg.Pool, topology: ServiceTopology, identity: BrokerIdentity,
                 own_user: str, crash_after_commit: str = ""):
        """`identity` says who may act for which organisation; `own_user` is this service's broker user
        (the `user_id` of what it publishes: retries, parked copies, events)."""
        self.broker, self.pool, self.topology = broker, pool, topology
        self.identity, self.own_user = identity, own_user
        self.policy = RetryPolicy(topology.retry_delays)
        # Set by the service once it has its pool and connections, before it consumes.
        self.replies: aio_pika.abc.AbstractChannel = None  # type: ignore[assignment]
        self.group: GroupCommit = None  # type: ignore[assignment]
        self._crash_after_commit = crash_after_commit

    async def handle(self, msg: RabbitMessage, command: BaseModel, handler: Handler | None,
                     effect: Effect | None = None) -> None:
        """A command, run by `handler` in its transaction, or by `effect` (acts first, then records)."""
        try:
            meta = Meta.of(msg, self.identity)
        except Rejected as exc:
            return await self.refuse(msg, exc)
        await self._run(msg, meta, command, _Step(handler, effect))

    async def handle_event(self, msg: RabbitMessage, event: Event, handler: Handler | None,
                           effect: Effect | None = None) -> None:
        """An event this service subscribed to: at most one effect per event id, retried like a command."""
        try:
            meta = Meta.of_event(msg, event, self.identity)
        except Rejected as exc:
            return await self.refuse(msg, exc)
        await self._run(msg, meta, event, _Step(handler, effect))

    async def _run(self, msg: RabbitMessage, meta: Meta, command: BaseModel, step: "_Step") -> None:
        started = time.monotonic()
        with logging.bind(command_id=meta.message_id, correlation_id=meta.correlation_id, org_id=meta.org_id):
            try:
                reply, replayed = await self._execute(meta, command, step)
            except Rejected as exc:
                reply, replayed = exc.reply(), False
            except Pending as exc:
                if exc.reply is not None and Header.LAST_ERROR not in meta.headers:  # not heard from us yet
                    await self.reply(meta.reply_to, meta.correlation_id, exc.reply, attempt=meta.attempt)
                return await self._retry_or_park(msg, meta, exc, step)
            except Exception as exc:  # transient by definition: see shared.retry
                return await self._retry_or_park(msg, meta, exc, step)
            if self._crash_after_commit == meta.command:
                os.kill(os.getpid(), signal.SIGKILL)  # test hook: die between commit and ack
            log.info("command.done", command=meta.command, status=reply.status, replayed=replayed, attempt=meta.attempt)
            outcome = "replayed" if replayed else "refused" if reply.status >= 400 else "done"
            self._count(meta.command, outcome, started)
            await self.reply(meta.reply_to, meta.correlation_id, reply, replayed=replayed, attempt=meta.attempt)
            await msg.ack()

    async def _execute(self, meta: Meta, command: BaseModel, step: "_Step") -> tuple[Reply, bool]:
        print_ = inbox.fingerprint(meta.command, command)
        try:
            try:
                return await self._attempt(meta, command, step, print_), False
            except Rejected as refusal:  # the handler's writes are rolled back; the refusal is the answer to keep
                async with db.transaction(self.pool) as conn:
                    await inbox.record(conn, meta.message_id, meta.org_id, meta.command, print_, refusal.reply())
                return refusal.reply(), False
        except inbox.AlreadyDone:
            async with self.pool.acquire() as conn:
                return await inbox.stored(conn, meta.message_id, meta.org_id, print_), True

    async def _attempt(self, meta: Meta, command: BaseModel, step: "_Step", print_: str) -> Reply:
        try:
            handler = step.handler
            trace = tracing.carrier()  # here, in the command's own task: its batch may be written by another
            if step.effect is not None:  # act first, then record as a handler would
                result = await step.effect.perform(self.pool, command, meta)
                handler = partial(_record, step.effect, result)

            async def writes(conn: asyncpg.Connection) -> Reply:
                outcome = await handler(conn, command, meta)
                await inbox.record(conn, meta.message_id, meta.org_id, meta.command, print_, outcome.reply,
                                   outcome.events, trace)
                return outcome.reply

            return await self.group.run(writes)  # in a transaction shared with the commands beside it
        except asyncpg.DataError as exc:  # a value the database cannot hold (a NUL character...): bad input
            raise invalid(f"a value in the command cannot be stored: {exc}") from exc

    async def _retry_or_park(self, msg: RabbitMessage, meta: Meta, exc: Exception, step: "_Step") -> None:
        raw = msg.raw_message
        used = getattr(exc, "attempted", True)  # a Pending that tried nothing waits without using an attempt
        # Sent again as this service's own broker user, with the organisation it was found to act for.
        headers = {**meta.headers, Header.ORG: meta.org_id, Header.ROUTING_KEY: meta.command,
                   Header.ATTEMPT: meta.attempt + used, Header.LAST_ERROR: repr(exc)[:500]}
        common = dict(message_id=meta.message_id, correlation_id=meta.correlation_id, reply_to=meta.reply_to,
                      content_type=raw.content_type, persist=True, user_id=self.own_user)
        delay = self.policy.delay(meta.attempt if used else max(meta.attempt - 1, 1))
        if delay is not None:
            tier, wait = delay
            log.warning("command.retry_scheduled", command=meta.command, attempt=meta.attempt, delay=wait.total_seconds(),
                        error=repr(exc))
            metrics.RETRIES.labels(self.topology.service, meta.command).inc()
            self._count(meta.command, "pending" if isinstance(exc, Pending) else "retried")
            await self.broker.publish(raw.body, routing_key=self.topology.delay(tier).name, expiration=wait,
                                      headers=headers, **common)
        else:
            headers |= {Header.PARKED_REASON: repr(exc)[:500], Header.PARKED_AT: datetime.now(UTC).isoformat()}
            log.error("command.parked", command=meta.command, attempts=meta.attempt, error=repr(exc))
            metrics.PARKED.labels(self.topology.service, meta.command).inc()
            self._count(meta.command, "parked")
            failure = Reply(status=503, body=problem(
                503, "Command parked", f"the command failed {meta.attempt} times and was parked for an operator "
                f"to replay: {exc!r}"[:1000], "/problems/command-parked"))
            with suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):  # the database may be the fault
                async with db.transaction(self.pool) as conn:
                    await inbox.park(conn, meta.message_id, meta.org_id, failure)
                    if step.effect is not None:  # an Effect says what its parked attempt now is
                        await outbox.add(conn, await step.effect.parked(conn, meta))
            await self.broker.publish(raw.body, routing_key=self.topology.parked.name, headers=headers, **common)
            await self.reply(meta.reply_to, meta.correlation_id, failure, attempt=meta.attempt)
        await msg.ack()

    def _count(self, command: str, outcome: str, started: float | None = None) -> None:
        metrics.COMMANDS.labels(self.topology.service, command, outcome).inc()
        if started is not None:
            metrics.COMMAND_SECONDS.labels(self.topology.service, command).observe(time.monotonic() - started)

    async def answer(self, msg: RabbitMessage, query: Callable[[asyncpg.Connection, str], Awaitable[Reply]]) -> None:
        """Answer a query. Queries change nothing: neither deduped nor retried (the caller asks again)."""
        raw = msg.raw_message
        try:
            org = self.identity.org_of(raw.user_id, (raw.headers or {}).get(Header.ORG))
            async with self.pool.acquire() as conn:
                reply = await query(conn, str(org))
        except Rejected as exc:
            reply = exc.reply()
        except asyncpg.DataError as exc:
            reply = invalid(f"a value in the query cannot be used: {exc}").reply()
        except Exception as exc:
            log.warning("query.failed", routing_key=raw.routing_key, error=repr(exc))
            reply = Reply(status=503, body=problem(503, "Service unavailable", "the query failed; try again",
                                                   "/problems/unavailable"))
        await self.reply(raw.reply_to, raw.correlation_id, reply)
        await msg.ack()

    async def refuse(self, msg: RabbitMessage, exc: Rejected) -> None:
        raw = msg.raw_message
        log.info("command.refused", routing_key=raw.routing_key, detail=exc.body["detail"], command_id=raw.message_id,
                 correlation_id=raw.correlation_id, org_id=(raw.headers or {}).get(Header.ORG))
        self._count("_invalid", "invalid")  # not its routing key: anyone can make up those (label cardinality)
        await self.reply(raw.reply_to, raw.correlation_id, exc.reply())
        await msg.ack()

    async def reply(self, reply_to: str | None, correlation_id: str | None, reply: Reply, *, replayed: bool = False,
                    attempt: int = 1) -> None:
        """Straight on a channel without publisher confirms, past FastStream's publish path: a lost reply
        costs nothing but a 202 (the answer is in the inbox, and the status resource gives it)."""
        if not reply_to:
            return
        headers = {Header.REPLAYED: "true" if replayed else "false", Header.ATTEMPT: attempt}
        await self.replies.default_exchange.publish(
            aio_pika.Message(json.dumps(reply.model_dump(mode="json")).encode(), correlation_id=correlation_id,
                             headers=headers, content_type="application/json"),
            reply_to, mandatory=False)

    def middleware(self) -> type[BaseMiddleware]:
        """Answers a body that is not JSON or does not match its contract with 422 (and acks it)."""
        commands = self

        class RefuseInvalid(BaseMiddleware):
            async def consume_scope(self, call_next, msg):  # type: ignore[no-untyped-def]
                try:
                    return await call_next(msg)
                except ValidationError as exc:
                    errors = [{"field": ".".join(str(p) for p in e["loc"][1:]), "message": e["msg"]} for e in exc.errors()]
                    await commands.refuse(msg, invalid("the message body does not match its contract", errors))
                except ValueError as exc:  # not JSON, or not UTF-8
                    await commands.refuse(msg, invalid(f"the message body is not valid JSON: {exc}"))

        return RefuseInvalid


@dataclass(frozen=True)
class _Step:
    """What runs a message: a handler in the transaction, or an effect that acts first."""

    handler: Handler | None
    effect: Effect | None


async def _record(effect: Effect, result: Any, conn: asyncpg.Connection, command: Any, meta: Meta) -> Outcome:
    return await effect.record(conn, command, meta, result)
