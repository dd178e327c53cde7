"""What a websocket client may send (docs/realtime.md): the hello first, then refreshes and pongs.

Hostile input stops here, before it costs the gateway anything: at most MAX_TOPICS patterns, each of
at most MAX_TOPIC_LENGTH characters and MAX_TOPIC_WORDS words, no word empty (the matcher's cost grows
with the words of a pattern). Strict types: `true` is no position and "3" no number. Unknown fields are
ignored (a newer client). Whatever is wrong is a BadMessage whose text says what, short enough for a
close reason.
"""

import json
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

MAX_TOPICS = 32
MAX_TOPIC_LENGTH = 255  # an AMQP routing key's limit
MAX_TOPIC_WORDS = 16
MAX_REASON_BYTES = 123  # a close frame's payload is 125 bytes, 2 of them the code (RFC 6455)


class BadMessage(ValueError):
    """A message the gateway refuses (4400); its text says what is wrong."""


def _words(topic: str) -> str:
    words = topic.split(".")
    if len(words) > MAX_TOPIC_WORDS:
        raise PydanticCustomError("topic_words", "at most {limit} words", {"limit": MAX_TOPIC_WORDS})
    if "" in words:
        raise PydanticCustomError("topic_empty_word", "an empty word (two dots, or a dot at an end)")
    return topic


Topic = Annotated[str, Field(min_length=1, max_length=MAX_TOPIC_LENGTH), AfterValidator(_words)]


class ClientMessage(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


M = TypeVar("M", bound=ClientMessage)


class Resume(ClientMessage):
    epoch: str
    position: int = Field(ge=-1)  # the last position applied; -1: none yet


class Hello(ClientMessage):
    type: Literal["hello"]
    token: str = ""  # missing: refused as a token (4401), like an invalid one
    topics: list[Topic] = Field(default_factory=lambda: ["#"], min_length=1, max_length=MAX_TOPICS)
    resume: Resume | None = None


class Refresh(ClientMessage):
    type: Literal["refresh"]
    token: str = ""


class Pong(ClientMessage):
    type: Literal["pong", "ping"]  # both ignored


LATER: dict[str, type[Refresh | Pong]] = {"refresh": Refresh, "pong": Pong, "ping": Pong}


def parse_hello(text: str | None) -> Hello:
    """The first message (None: it was no text frame)."""
    return _validate(_object(text, "hello"), Hello)


def parse_later(text: str | None) -> Refresh | Pong:
    """A message after the hello."""
    message = _object(text, "message")
    kind = message.get("type")
    model = LATER.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise BadMessage("expected a refresh or a pong")
    return _validate(message, model)


def _object(text: str | None, what: str) -> dict[str, object]:
    if text is None:
        raise BadMessage(f"the {what} must be a JSON text frame")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # (nesting deeper than the decoder's stack)
        raise BadMessage(f"the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise BadMessage(f"the {what} must be a JSON object")
    return value


def _validate(message: dict[str, object], model: type[M]) -> M:
    try:
        return model.model_validate(message)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise BadMessage(f"bad {model.__name__.lower()}: {where}: {first['msg']}{more}") from None


def close_reason(text: str) -> bytes:
    """`text` as a close reason: UTF-8, cut to MAX_REASON_BYTES at a character's boundary."""
    data = text.encode("utf-8", "replace")[:MAX_REASON_BYTES]
    return data.decode("utf-8", "ignore").encode()
