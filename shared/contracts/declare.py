"""A button is one declaration: a row of this shape, beside its message models.

    Button("confirm_booking", "/api/bookings/confirm", ConfirmAppointment, ConfirmReply, "Confirm ...",
           cli="booking confirm appointmentId", refusals=(NotFound, NotScheduled, AlreadyStarted),
           events=(AppointmentConfirmed,))

From the rows (collected in shared/buttons.py) follow: the gateway's routes and views,
the OpenAPI document, the table a client reads at GET /api/buttons (services/gateway/catalog.py),
the Python client's methods and the `crm` subcommands (generated: shared/tools/clientgen.py).
The command model's `ROUTING_KEY` routes it on the broker; the service registers its handler
against the same model. `refusals` are what the button's own rules refuse (shared/problems.py);
what any press may be answered besides (a bad body, a token, an unavailable service...) is
`EVERY_BUTTON` and the body's own, and `all_refusals` says the whole.
"""

import re
from dataclasses import dataclass, field

from pydantic import BaseModel

from shared.contracts.envelope import Command, EventData, Query
from shared.problems import (
    CommandParked,
    ContentTypeMismatch,
    Invalid,
    InvalidIdempotencyKey,
    KeyReused,
    MalformedJson,
    MalformedMultipart,
    NotFound,
    Rejected,
    TooLarge,
    Unauthorized,
    Unavailable,
    UnsupportedEncoding,
    UnsupportedMediaType,
)

Refusals = tuple[type[Rejected], ...]
# Any press: a key that is no key or reused with another body, no token, invalid input, the broker or the
# service away (503), a command parked after its retries (its answer, followed from a 202).
EVERY_BUTTON: Refusals = (Invalid, InvalidIdempotencyKey, KeyReused, Unauthorized, Unavailable, CommandParked)
JSON_BODY: Refusals = (MalformedJson,)
FILE_BODY: Refusals = (MalformedMultipart, TooLarge, UnsupportedMediaType, ContentTypeMismatch, UnsupportedEncoding)


def path_fields(path: str) -> tuple[str, ...]:
    return tuple(re.findall(r"{(\w+)}", path))


@dataclass(frozen=True)
class Button:
    name: str  # the client's method (snake_case), also the OpenAPI operationId
    path: str  # POST; `{field}` segments are taken from the path into the body
    command: type[Command]
    reply: type[BaseModel]
    summary: str
    status: int = 200  # the success status (201 when it creates)
    # Several buttons on one path: the body field whose presence picks this one (one only, else 422).
    selector: str | None = None
    # `crm` subcommand: "group action positional..." in the command's field names; other fields are --options.
    cli: str = ""
    flags: dict[str, str] = field(default_factory=dict)  # field -> the option's name, where not --kebab-case
    breaker: bool = False  # the client sends it through its provider breaker (a provider behind it)
    # A multipart upload: the file part of this name is stored first (claim check, services/gateway/uploads.py)
    # and the command carries its sha256, size, content type and file name instead of the bytes.
    upload: str | None = None
    refusals: Refusals = ()  # what its own rules refuse
    events: tuple[type[EventData], ...] = ()  # what it publishes when it changes something

    @property
    def routing_key(self) -> str:
        return self.command.ROUTING_KEY

    @property
    def service(self) -> str:
        return self.routing_key.split(".")[0]

    @property
    def fields(self) -> tuple[str, ...]:
        return path_fields(self.path)

    @property
    def all_refusals(self) -> Refusals:
        """Every refusal a press of it may be answered: its rules', its body's, any button's."""
        return (*self.refusals, *(FILE_BODY if self.upload else JSON_BODY), *EVERY_BUTTON)


@dataclass(frozen=True)
class Read:
    name: str  # the client's method
    path: str  # GET; `{field}` segments fill the query model (a value that cannot be an id: 404)
    query: type[Query]
    reply: type[BaseModel]
    summary: str
    cli: str = ""

    @property
    def service(self) -> str:
        return self.query.ROUTING_KEY.split(".")[0]

    @property
    def fields(self) -> tuple[str, ...]:
        return path_fields(self.path)

    @property
    def options(self) -> tuple[str, ...]:
        """The query string's parameters: the query model's fields that the path does not fill."""
        return tuple(n for n in self.query.model_fields if n not in self.fields)

    @property
    def all_refusals(self) -> Refusals:
        found = (NotFound,) if self.fields else ()  # an id that names nothing (or another organisation's)
        checked = (Invalid,) if self.options else ()  # a query string that is not valid
        return (*found, *checked, Unauthorized, Unavailable)
