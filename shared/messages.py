"""What a handler sees of a message, and what it gives back.

`Meta`: the ids every message carries (message id, org, user, type, correlation,
reply-to, attempt). `Outcome`: the answer and the events to publish. A `Handler`
runs inside the command's transaction; an `Effect` (registered with
`Service.effect`) acts outside it first.
"""
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from faststream.rabbit import RabbitMessage
from pydantic import BaseModel

from shared.contracts.envelope import Event, EventData, Header, Reply
from shared.identity import BrokerIdentity
from shared.problems import Forbidden, invalid


@dataclass(frozen=True)
class Meta:
    message_id: str
    org_id: str
    user_id: str
    command: str
    correlation_id: str | None = None
    reply_to: str | None = None
    attempt: int = 1
    headers: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, msg: RabbitMessage, identity: BrokerIdentity) -> "Meta":
        """The organisation comes from the publishing broker user (shared/identity.py), not from a header alone."""
        raw = msg.raw_message
        headers = dict(raw.headers or {})
        command = str(headers.get(Header.ROUTING_KEY) or raw.routing_key)
        missing = [name for name, value in (("message_id", raw.message_id), (Header.USER, headers.get(Header.USER)))
                   if not value]
        if missing:
            raise invalid(f"the message lacks {', '.join(missing)}")
        org = identity.org_of(raw.user_id, headers.get(Header.ORG))
        return cls(raw.message_id, org, str(headers[Header.USER]), command,
                   raw.correlation_id, raw.reply_to, int(headers.get(Header.ATTEMPT, 1)), headers)

    @classmethod
    def of_event(cls, msg: RabbitMessage, event: Event, identity: BrokerIdentity) -> "Meta":
        """An event consumed like a command: its id is the dedupe key, its type the command. Only the
        platform's own relays publish events: one from anyone else is refused."""
        if not identity.is_platform(msg.raw_message.user_id):
            raise Forbidden(f"an event from broker user {msg.raw_message.user_id!r}: events are the platform's")
        headers = dict(msg.raw_message.headers or {})
        return cls(str(event.id), event.org_id, "events", str(headers.get(Header.ROUTING_KEY) or event.type),
                   event.correlation_id, None, int(headers.get(Header.ATTEMPT, 1)), headers)

    def event(self, data: EventData, org_id: str | None = None) -> Event:
        """The event `data` makes (its type is the model's TYPE), caused by this message."""
        return Event(type=data.TYPE, org_id=org_id or self.org_id, command_id=self.message_id, correlation_id=self.correlation_id,
                     data=data.model_dump(mode="json", by_alias=True))


@dataclass
class Outcome:
    reply: Reply
    events: list[Event] = field(default_factory=list)


Handler = Callable[[asyncpg.Connection, Any, Meta], Awaitable[Outcome]]


class Effect(ABC):
    """A command whose effect leaves the database (a message sent through a provider).

    `perform` runs first, outside any transaction, and must itself be safe to run again
    for the same message id (it records its attempt before acting, and looks before
    acting twice); `record` then writes its result in the command's transaction, with
    the inbox row, like any handler. Either may raise `Rejected`; `perform` may raise
    `Pending` to answer "later" and be retried. `parked` (in the parking transaction)
    marks what the parked command left behind and returns the events that say so.
    """

    @abstractmethod
    async def perform(self, pool: asyncpg.Pool, command: Any, meta: Meta) -> Any: ...

    @abstractmethod
    async def record(self, conn: asyncpg.Connection, command: Any, meta: Meta, result: Any) -> Outcome: ...

    async def parked(self, conn: asyncpg.Connection, meta: Meta) -> list[Event]:
        return []


def of_type(message_type: str) -> Callable[[RabbitMessage], Awaitable[bool]]:
    """A FastStream filter: the message is a command (or event) of this type, also after a delay queue."""

    # async on purpose: FastStream runs a sync filter in a worker thread, a hop per message.
    async def matches(message: RabbitMessage) -> bool:
        raw = message.raw_message
        return (raw.headers or {}).get(Header.ROUTING_KEY, raw.routing_key) == message_type

    return matches


def ok(view: BaseModel, status: int = 200) -> Reply:
    """An answer from a view model (by alias, JSON types), as every handler gives one."""
    return Reply(status=status, body=view.model_dump(mode="json", by_alias=True))
