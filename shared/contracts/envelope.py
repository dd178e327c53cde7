"""What every message carries besides its body.

Commands: AMQP `message_id` (required: the dedupe key), `correlation_id`,
`reply_to` (optional), headers `x-org-id` and `x-user-id`, `timestamp`, and the
command type as routing key. Replies: {status, body}, HTTP-like, where an error
body is an RFC 9457 problem. Events: the `Event` envelope below.
"""

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar
from uuid import UUID, uuid4

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
)


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


# A name or an id carried in a property or a header: text, no control characters (no NUL: PostgreSQL cannot
# store it), at most 255 characters (an AMQP short string's length; headers could carry megabytes).
Name = Annotated[StrictStr, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]*$")]
TRACE_HEADERS = ("traceparent", "tracestate")  # the W3C trace context (shared/tracing.py), carried along


class Properties(BaseModel):
    """What a consumer reads of a message besides its body: its AMQP properties and our headers, parsed
    strictly (a header may be a table, an array, bytes, a float, a huge number or a megabyte of text:
    hostile until parsed). Other headers are ignored, and not carried along to a retry."""

    model_config = ConfigDict(extra="ignore")
    HEADERS: ClassVar[tuple[str, ...]] = (
        Header.ORG,
        Header.USER,
        Header.ATTEMPT,
        Header.ROUTING_KEY,
        Header.LAST_ERROR,
    )

    message_id: Name | None = None
    # Bodies are JSON (UTF-8, as JSON is), sent as they are: no other type, no compression.
    content_type: Annotated[StrictStr, StringConstraints(pattern=r"^(application/json\s*(;.{0,100})?)?$")] | None = None
    content_encoding: Annotated[StrictStr, StringConstraints(pattern=r"^(|utf-?8|UTF-?8|identity)$")] | None = None
    correlation_id: Name | None = None
    reply_to: Name | None = None
    user_id: Name | None = None
    routing_key: Name
    org: Name | None = Field(None, alias=Header.ORG)
    user: Name | None = Field(None, alias=Header.USER)
    attempt: StrictInt = Field(1, alias=Header.ATTEMPT, ge=1)
    command: Name | None = Field(None, alias=Header.ROUTING_KEY)
    last_error: Annotated[StrictStr, StringConstraints(max_length=1000)] | None = Field(None, alias=Header.LAST_ERROR)
    trace: dict[str, Annotated[StrictStr, StringConstraints(max_length=512)]] = {}


class Incoming(BaseModel):
    """Base of every consumed body: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")


class Command(Incoming):
    """A button's message: `ROUTING_KEY` (`<service>.<name>` on `commands`) is its type everywhere:
    the gateway publishes with it, the service routes on it, the inbox fingerprints it."""

    ROUTING_KEY: ClassVar[str]
    # Only the platform's own broker users may send it (the gateway after checking a webhook's signature, the
    # SMS service's campaign dispatcher...): from an integrating system it is refused 403 and changes nothing.
    INTERNAL: ClassVar[bool] = False


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
