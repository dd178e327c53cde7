"""A press as a request: route and JSON body, in the gateway's field names (pure, no I/O)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode


@dataclass(frozen=True)
class Press:
    operation: str  # the client method's name, shown in pending() and outcomes()
    path: str
    body: dict[str, Any]


def body(**fields: Any) -> dict[str, Any]:
    """The fields given (None means not given); an aware datetime as ISO 8601 (the gateway wants a time zone)."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items() if v is not None}


def path(template: str, **ids: str) -> str:
    """`/api/leads/{leadId}` with each id quoted (an id is one path segment, whatever it holds)."""
    return template.format(**{k: quote(str(v), safe="") for k, v in ids.items()})


def one_of(fields: dict[str, Any]) -> None:
    """For a button that needs one of several fields (a message or a template): one, not none, not both."""
    if sum(v is not None for v in fields.values()) != 1:
        raise ValueError(f"give one of {', '.join(fields)}")


def with_query(target: str, **params: object) -> str:
    """`target?name=value...` for the parameters given (None: not given)."""
    given = {k: v for k, v in params.items() if v is not None}
    return f"{target}?{urlencode(given)}" if given else target
