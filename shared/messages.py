"""What a handler sees of a message, and what it gives back.

`Meta`: the ids every message carries (message id, org, user, type, correlation,
reply-to, attempt; for an event, its type). `Outcome`: the answer and the events to
publish. A `Handler[C]` runs inside the transaction on a `C` (a command, or an event's
typed data); an `Effect[C, R]` (registered with `Service.effect`, or `Service.event`)
acts outside it first, giving an `R` that it then records in it.
"""

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import asyncpg
from faststream.rabbit import RabbitMessage
from pydantic import BaseModel, ValidationError

from shared.contracts.envelope import (
    TRACE_HEADERS,
    Event,
    EventData,
    Header,
    Properties,
    Reply,
)
from shared.identity import BrokerIdentity
from shared.problems import Forbidden, InvalidMessage, field_errors, invalid

T = TypeVar("T")
C = TypeVar("C")  # what a handler or an effect is given: a command, or an event's typed data
R = TypeVar("R")  # what an effect's `perform` gives its `record`


@dataclass(frozen=True)
class Meta:
    message_id: str
    org_id: str
    user_id: str
    command: str
    correlation_id: str | None = None
    reply_to: str | None = None
    attempt: int = 1
    retried: bool = False  # it came back from a delay queue (we have answered it before)
    trace: dict[str, str] = field(default_factory=dict)  # the W3C trace context it came with

    @classmethod
    def of(cls, msg: RabbitMessage, identity: BrokerIdentity, max_attempts: int) -> "Meta":
        """The organisation comes from the publishing broker user (shared/identity.py), not from a header alone."""
        props = properties(msg.raw_message, max_attempts)
        missing = [name for name, value in (("message_id", props.message_id), (Header.USER, props.user)) if not value]
        if missing:
            raise invalid(f"the message lacks {', '.join(missing)}")
        org = identity.org_of(props.user_id, props.org)
        return cls(
            str(props.message_id),
            org,
            str(props.user),
            props.command or props.routing_key,
            props.correlation_id,
            props.reply_to,
            props.attempt,
            props.last_error is not None,
            props.trace,
        )

    @classmethod
    def of_event(cls, msg: RabbitMessage, event: Event, identity: BrokerIdentity, max_attempts: int) -> "Meta":
        """An event consumed like a command: its id is the dedupe key, its type the command. Only the
        platform's own relays publish events: one from anyone else is refused."""
        props = properties(msg.raw_message, max_attempts)
        if not identity.is_platform(props.user_id):
            raise Forbidden(f"an event from broker user {props.user_id!r}: events are the platform's")
        return cls(
            str(event.id),
            event.org_id,
            "events",
            props.command or event.type,
            event.correlation_id,
            None,
            props.attempt,
            props.last_error is not None,
            props.trace,
        )

    def carried(self) -> dict[str, Any]:
        """The headers a copy of this message carries (to a delay queue, to the parking queue)."""
        return {Header.ORG: self.org_id, Header.USER: self.user_id, Header.ROUTING_KEY: self.command, **self.trace}

    def event(self, data: EventData, org_id: str | None = None) -> Event:
        """The event `data` makes (its type is the model's TYPE), caused by this message."""
        return Event(
            type=data.TYPE,
            org_id=org_id or self.org_id,
            command_id=self.message_id,
            correlation_id=self.correlation_id,
            data=data.model_dump(mode="json", by_alias=True),
        )


class NeedsLookup(Exception):
    """Raised by a handler that needs what another service knows and this one's projection lacks (a lead
    created a moment ago): the pipeline rolls the transaction back, awaits `resolve()` with no transaction
    open and no connection held, then runs the command again. A remote call never waits inside a
    transaction, where it would hold locks, and the whole batch of commands beside it, for its duration."""

    def __init__(self, what: str, resolve: Callable[[], Awaitable[None]]):
        super().__init__(what)
        self._resolve = resolve

    async def resolve(self) -> None:
        await self._resolve()

    @staticmethod
    async def looked_up(run: Callable[[], Awaitable[T]], most: int = 3) -> T:
        """`run()`, again after each look-up it needs (at most `most`; one more is raised, a transient failure)."""
        for _ in range(most):
            try:
                return await run()
            except NeedsLookup as needed:
                await needed.resolve()
        return await run()


@dataclass
class Outcome:
    reply: Reply
    events: list[Event] = field(default_factory=list)


# The answer to a message that asks nothing of this service (an event whose `when` is false, a callback that
# changes nothing): stored like any answer, so the message is still done once.
IGNORED = Reply(status=200, body={"applied": False})


# `Handler[SendSms]`: runs in the transaction on a `SendSms` (a bare `Handler`: on anything).
Handler = Callable[[asyncpg.Connection, C, Meta], Awaitable[Outcome]]


class Effect(ABC, Generic[C, R]):
    """A command (or an event) whose effect leaves the database (a message sent through a provider).

    `perform` runs first, outside any transaction, and must itself be safe to run again
    for the same message id (it records its attempt before acting, and looks before
    acting twice); `record` then writes its result in the command's transaction, with
    the inbox row, like any handler. Either may raise `Rejected`; `perform` may raise
    `Pending` to answer "later" and be retried. `parked` (in the parking transaction)
    marks what the parked command left behind and returns the events that say so.
    """

    @abstractmethod
    async def perform(self, pool: asyncpg.Pool, command: C, meta: Meta) -> R: ...

    @abstractmethod
    async def record(self, conn: asyncpg.Connection, command: C, meta: Meta, result: R) -> Outcome: ...

    async def parked(self, conn: asyncpg.Connection, meta: Meta) -> list[Event]:
        return []


def properties(raw: Any, max_attempts: int) -> Properties:
    """A delivered message's properties and our headers, parsed (`InvalidMessage`, 422, for any that cannot be
    read); `x-attempt` must be one of the 1..`max_attempts` attempts the retry policy makes."""
    headers = raw.headers if isinstance(raw.headers, dict) else {}
    given = {
        "message_id": raw.message_id,
        "content_type": raw.content_type,
        "content_encoding": raw.content_encoding,
        "correlation_id": raw.correlation_id,
        "reply_to": raw.reply_to,
        "user_id": raw.user_id,
        "routing_key": raw.routing_key,
        **{name: headers[name] for name in Properties.HEADERS if name in headers},
        "trace": {name: headers[name] for name in TRACE_HEADERS if name in headers},
    }
    try:
        props = Properties.model_validate(given)
    except ValidationError as exc:
        errors = field_errors(exc)
        raise InvalidMessage(
            f"the message's properties or headers cannot be read: {errors[0]['field']}: {errors[0]['message']}", errors
        ) from None
    if props.attempt > max_attempts:
        raise InvalidMessage(
            f"{Header.ATTEMPT} must be 1 to {max_attempts} (the retry policy's attempts), not {props.attempt}",
            [{"field": Header.ATTEMPT, "message": f"at most {max_attempts}"}],
        )
    return props


def of_type(message_type: str) -> Callable[[RabbitMessage], Awaitable[bool]]:
    """A FastStream filter: the message is a command (or event) of this type, also after a delay queue."""

    # async on purpose: FastStream runs a sync filter in a worker thread, a hop per message.
    async def matches(message: RabbitMessage) -> bool:
        raw = message.raw_message
        named = raw.headers.get(Header.ROUTING_KEY) if isinstance(raw.headers, dict) else None
        # A header that is no text is taken as absent here: the pipeline refuses it by name (`properties`).
        return (named if isinstance(named, str) else raw.routing_key) == message_type

    return matches


def ok(view: BaseModel, status: int = 200) -> Reply:
    """An answer from a view model (by alias, JSON types), as every handler gives one."""
    return Reply(status=status, body=view.model_dump(mode="json", by_alias=True))
