"""A button is one declaration: a row of this shape, beside its message models.

    Button("confirm_booking", "/api/bookings/confirm", ConfirmAppointment, ConfirmReply, "Confirm ...",
           cli="booking confirm appointmentId")

From the rows (collected in shared/buttons.py) follow: the gateway's routes and views,
the OpenAPI document, the Python client's methods and the `crm` subcommands
(generated: shared/tools/clientgen.py). The command model's `ROUTING_KEY` routes it on
the broker; the service registers its handler against the same model.
"""
from dataclasses import dataclass, field

from pydantic import BaseModel

from shared.contracts.envelope import Command, Query


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

    @property
    def routing_key(self) -> str:
        return self.command.ROUTING_KEY

    @property
    def service(self) -> str:
        return self.routing_key.split(".")[0]


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
