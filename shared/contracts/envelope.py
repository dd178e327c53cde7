"""What every message carries besides its body.

Commands: AMQP `message_id` (required: the dedupe key), `correlation_id`,
`reply_to` (optional), headers `x-org-id` and `x-user-id`, `timestamp`, and the
command type as routing key. Replies: {status, body}, HTTP-like, where an error
body is an RFC 9457 problem. Events: the `Event` envelope below.
"""
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field


class Header:
    ORG = "x-org-id"
    USER = "x-user-id"
    # Set by the retry mechanism, read by consumers.
    ATTEMPT = "x-attempt"
    ROUTING_KEY = "x-routing-key"  # the command type, kept across delay queues
    LAST_ERROR = "x-last-error"
    PARKED_REASON = "x-parked-reason"
    PARKED_AT = "x-parked-at"
    # Set on replies.
    REPLAYED = "x-replayed"


class Incoming(BaseModel):
    """Base of every consumed body: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")


class Command(Incoming):
    """A button's message: `ROUTING_KEY` (`<service>.<name>` on `commands`) is its type everywhere:
    the gateway publishes with it, the service routes on it, the inbox fingerprints it."""

    ROUTING_KEY: ClassVar[str]


class Query(Incoming):
    """A read: `ROUTING_KEY` is `<service>.query.<name>` on `queries` (answered, never deduped)."""

    ROUTING_KEY: ClassVar[str]


class EventData(BaseModel):
    """The `data` of an event: `TYPE` is its routing key on `events` and its `type` in the envelope."""

    TYPE: ClassVar[str]


class GetCommand(Incoming):
    """Query `<service>.query.command` (every service answers it): the final answer of an accepted command."""

    commandId: str


class Reply(BaseModel):
    status: int
    body: dict[str, Any]


class Event(BaseModel):
    """The envelope of every event on the `events` exchange (routing key = type)."""

    id: UUID = Field(default_factory=uuid4)
    type: str
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    org_id: str
    command_id: str | None = None
    correlation_id: str | None = None
    data: dict[str, Any]
    # Always null in the body (kept for compatibility): an event's position is its offset in the
    # event log (`x-stream-offset`, docs/realtime.md), known only once it is in the log.
    position: int | None = None


def problem(status: int, title: str, detail: str, type_: str = "about:blank", **extra: Any) -> dict[str, Any]:
    """An RFC 9457 problem body."""
    return {"type": type_, "title": title, "status": status, "detail": detail, **extra}
