"""GET /api/buttons: the button table as a client reads it; and the gateway's other routes, as rows.

    {"buttons":  {name: {method, path, fields, selector, upload, status, body, reply, refusals, events, summary}},
     "reads":    {name: {method, path, fields, query, reply, refusals, summary}},
     "routes":   {name: {method, path, fields, public, summary}},
     "problems": {type: {name, status, title}}}

A client builds a press from its button's row (the path's `{fields}` filled from the press's
fields), and keys its words by button name and problem type: nothing of the server's table is
typed a second time in a client. `body` and `reply` point into /api/openapi.json's components;
`refusals` are problem types (shared/problems.py), `events` event types. The same for everyone
and data-free: public, with an ETag and a max-age (304 on If-None-Match).

`ROUTES` are the routes that are not a button or a read (the statuses, the document's bytes and
its DELETE, a command's answer, the webhooks, the development sign-in, this table): routes.py
routes them and openapi.py documents them from these rows.
"""

import hashlib
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from aiohttp import hdrs, web
from pydantic import BaseModel

from services.gateway import buttons, downloads, views, webhooks
from services.gateway.buttons import View
from shared.buttons import BUTTONS, READS
from shared.contracts.declare import Button, Refusals, path_fields
from shared.contracts.documents import DeleteDocument
from shared.contracts.leads import StatusesReply, statuses_reply
from shared.problems import (
    BY_TYPE,
    PROBLEMS,
    BadSignature,
    BadWebhook,
    Forbidden,
    MalformedForm,
    NotFound,
    RangeNotSatisfiable,
    TooLarge,
    Unauthorized,
    Unavailable,
)

SCHEMAS = "/api/openapi.json#/components/schemas/"
CACHE_CONTROL = "public, max-age=300"  # it changes with a release only; a client may revalidate sooner (ETag)


class ButtonEntry(BaseModel):
    method: Literal["POST"]
    path: str
    fields: list[str]  # the path's {fields}: taken from the press's fields
    selector: str | None  # several buttons on one path: the field whose presence picks this one
    upload: str | None  # multipart/form-data with the file in this part, instead of a JSON body
    status: int  # of its answer
    body: str  # the command's schema
    reply: str  # the answer's schema
    refusals: list[str]  # the problem types it may be answered
    events: list[str]  # the event types it publishes when it changes something
    summary: str


class ReadEntry(BaseModel):
    method: Literal["GET"]
    path: str
    fields: list[str]
    query: list[str]  # the query string's parameters
    reply: str
    refusals: list[str]
    summary: str


class RouteEntry(BaseModel):
    method: str
    path: str
    fields: list[str]
    public: bool  # no token needed
    summary: str


class ProblemEntry(BaseModel):
    name: str  # its class in shared/problems.py (and in the Python client's errors)
    status: int
    title: str


class ButtonTable(BaseModel):
    """GET /api/buttons (services/gateway/catalog.py)."""

    buttons: dict[str, ButtonEntry]
    reads: dict[str, ReadEntry]
    routes: dict[str, RouteEntry]
    problems: dict[str, ProblemEntry]


def types(refusals: Refusals) -> list[str]:
    return list(dict.fromkeys(PROBLEMS[r][2] for r in refusals))


def table() -> ButtonTable:
    return ButtonTable(
        buttons={
            b.name: ButtonEntry(
                method="POST",
                path=b.path,
                fields=list(b.fields),
                selector=b.selector,
                upload=b.upload,
                status=b.status,
                body=SCHEMAS + b.command.__name__,
                reply=SCHEMAS + b.reply.__name__,
                refusals=types(b.all_refusals),
                events=[e.TYPE for e in b.events],
                summary=b.summary,
            )
            for b in BUTTONS
        },
        reads={
            r.name: ReadEntry(
                method="GET",
                path=r.path,
                fields=list(r.fields),
                query=list(r.options),
                reply=SCHEMAS + r.reply.__name__,
                refusals=types(r.all_refusals),
                summary=r.summary,
            )
            for r in READS
        },
        routes={
            r.name: RouteEntry(
                method=r.method, path=r.path, fields=list(path_fields(r.path)), public=r.public, summary=r.summary
            )
            for r in ROUTES
        },
        problems={
            type_: ProblemEntry(name=refusal.__name__, status=PROBLEMS[refusal][0], title=PROBLEMS[refusal][1])
            for type_, refusal in BY_TYPE.items()
        },
    )


@cache
def published() -> tuple[bytes, str]:
    """The body, made once, and its ETag (the hash of the body: a new table is a new tag)."""
    body = table().model_dump_json().encode()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


async def serve(request: web.Request) -> web.Response:
    body, etag = published()
    headers = {hdrs.ETAG: etag, hdrs.CACHE_CONTROL: CACHE_CONTROL}
    if views.not_modified(request, etag.strip('"')):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", headers=headers)


# The other routes --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Route:
    """A route that is not a button or a read: its view, and what the OpenAPI document says of it."""

    name: str  # its operationId, and its name in GET /api/buttons' routes
    method: str
    path: str
    view: View
    summary: str
    public: bool = False  # no token (outside /api, or in app.py's PUBLIC_API)
    reply: type[BaseModel] | None = None  # its 200's JSON body
    example: Any = None  # of that body
    button: Button | None = None  # another way to press this button: the path alone is the command
    accepted: bool = False  # may answer 202 (the command is queued; Location says where its answer will be)
    refusals: Refusals = ()  # its problem answers: status and title from shared/problems.py
    answers: dict[int, str | dict[str, Any]] = field(default_factory=dict)  # its other answers (OpenAPI responses)
    parameters: tuple[dict[str, Any], ...] = ()  # besides its path's (headers)
    body: dict[str, Any] | None = None  # its OpenAPI requestBody, when not JSON


def header(name: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "schema": {"type": "string"}}


DELETE_DOCUMENT = next(b for b in BUTTONS if b.command is DeleteDocument)
SENT = {
    "ETag": {"description": '"<sha256>" of the bytes', "schema": {"type": "string"}},
    "Content-Disposition": {"description": "attachment, with the file name", "schema": {"type": "string"}},
    "Accept-Ranges": {"schema": {"const": "bytes"}},
}
BYTES = {"*/*": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}
WEBHOOK: dict[str, Any] = {
    "public": True,
    "parameters": (header("X-Twilio-Signature", required=True),),
    "body": {"content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}},
    "answers": {
        204: "Accepted",
        200: "Accepted (TwiML)",
        400: "A body that is not a readable form (not form-urlencoded, a charset other than UTF-8, ASCII or "
        "Latin-1, bytes not in it)",
        403: "Bad signature: nothing changes",
        413: "A body over 64 KiB",
        503: "The broker did not confirm the command: Twilio retries",
    },
    "refusals": (MalformedForm, BadWebhook, BadSignature, TooLarge, Unavailable),
}
DEV: dict[str, Any] = {"public": True, "refusals": (NotFound, Forbidden)}

ROUTES: tuple[Route, ...] = (
    Route(
        "button_table",
        "GET",
        "/api/buttons",
        serve,
        "The button table: each button's and read's method, path, "
        "body, refusals and events, and the problem types (public; ETag, If-None-Match: 304)",
        public=True,
        reply=ButtonTable,
        parameters=(header("If-None-Match"),),
        answers={304: "Not modified: If-None-Match has the ETag"},
    ),
    Route(
        "lead_statuses",
        "GET",
        "/api/leads/statuses",
        buttons.lead_statuses,
        "The lead statuses and the moves allowed from each (the rule the service enforces)",
        reply=StatusesReply,
        example=statuses_reply().model_dump(mode="json"),
        answers={200: "Statuses and moves"},
        refusals=(Unauthorized,),
    ),
    Route(
        "download_document",
        "GET",
        "/api/documents/{documentId}/content",
        downloads.content,
        "A document's bytes (Range and If-None-Match honoured)",
        parameters=(header("Range"), header("If-None-Match")),
        answers={
            200: {"description": "The bytes", "headers": SENT, "content": BYTES},
            206: {"description": "The range asked for (Content-Range)", "headers": SENT, "content": BYTES},
            304: "Not modified: If-None-Match has the ETag",
        },
        refusals=(Unauthorized, NotFound, RangeNotSatisfiable, Unavailable),
    ),
    Route(
        "delete_document_by_delete",
        "DELETE",
        "/api/documents/{documentId}",
        buttons.press([DELETE_DOCUMENT], body=False),
        "Delete a document (as POST /api/documents/{documentId}/delete)",
        button=DELETE_DOCUMENT,
        answers={200: "The deleted document"},
    ),
    Route(
        "command_status",
        "GET",
        "/api/commands/{service}/{commandId}",
        views.command_status,
        "The final answer of an accepted command (202 until it exists)",
        accepted=True,
        answers={200: "The command's answer, as it would have been given"},
        refusals=(Unauthorized, NotFound, Unavailable),
    ),
    Route(
        "twilio_status",
        "POST",
        "/webhooks/twilio/status",
        webhooks.twilio_status,
        "Twilio status callback (X-Twilio-Signature checked)",
        **WEBHOOK,
    ),
    Route(
        "twilio_inbound",
        "POST",
        "/webhooks/twilio/inbound",
        webhooks.twilio_inbound,
        "Twilio inbound message: STOP / START (signature checked)",
        **WEBHOOK,
    ),
    # Outside /api on purpose: public (no token yet), and 404 unless DEV_LOGIN is on.
    Route(
        "dev_login",
        "GET",
        "/dev/login",
        buttons.dev_login,
        "Development only (DEV_LOGIN): whether the demo sign-in is offered, and as whom; 404 when off",
        answers={200: "{org, user}", 404: "DEV_LOGIN is off", 403: "Not from this machine"},
        **DEV,
    ),
    Route(
        "dev_token",
        "POST",
        "/dev/token",
        buttons.dev_token,
        "Development only (DEV_LOGIN): a token for the demo agent; 404 when off",
        answers={200: "{token, org, user, expires_in}", 404: "DEV_LOGIN is off", 403: "Not from this machine"},
        **DEV,
    ),
)
# The rows under /api that need no token (services/gateway/app.py's PUBLIC_API).
PUBLIC: frozenset[str] = frozenset(r.path for r in ROUTES if r.public and r.path.startswith("/api/"))
