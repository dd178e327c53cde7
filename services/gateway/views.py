"""What every view does: parse the request, send a command or a query, map the answer; and operations."""

import json
import re
from typing import Any, TypeVar
from uuid import UUID, uuid4, uuid5

from aiohttp import web
from pydantic import BaseModel, ValidationError

from services.gateway.auth import Principal
from services.gateway.bus import Answer, Bus, Unavailable
from services.gateway.errors import json_response
from services.gateway.keys import BUS, READINESS, SERVICES, SETTINGS
from shared import logging, problems, topology
from shared.contracts.envelope import GetCommand

M = TypeVar("M", bound=BaseModel)
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_\-.:]{1,255}$")
# Namespace of the message ids derived from idempotency keys (fixed forever: changing
# it would make every stored key unknown).
KEY_NAMESPACE = UUID("6f1c3a52-8a41-4f0e-9a0f-5b8d2f6c1e77")


async def read_json(request: web.Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise problems.MalformedJson("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise problems.MalformedJson("the request body must be a JSON object")
    return data


def parse(model: type[M], data: Any, what: str = "the request body") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise problems.invalid_body(exc, f"{what} is not valid") from None


def path_ids(model: type[M], **fields: str) -> M:
    """Ids from the path: one that cannot be an id names nothing, so 404 (not 422)."""
    try:
        return model.model_validate(fields)
    except ValidationError:
        raise problems.NotFound(f"there is nothing at {', '.join(fields.values())}") from None


def message_id_for(request: web.Request, principal: Principal) -> str:
    """A key is scoped to (organisation, user, route): the same key elsewhere is another command."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return str(uuid4())
    if not IDEMPOTENCY_KEY.match(key):
        raise problems.InvalidIdempotencyKey("Idempotency-Key must be 1 to 255 characters of A-Z a-z 0-9 _ - . :")
    return str(uuid5(KEY_NAMESPACE, "\n".join((principal.org, principal.user, request.path, key))))


async def _call(
    request: web.Request,
    exchange: str,
    routing_key: str,
    body: BaseModel,
    message_id: str,
    wait: float,
    persistent: bool,
) -> Answer | None:
    principal: Principal = request["principal"]
    bus: Bus = request.app[BUS]
    with logging.bind(command_id=message_id, correlation_id=request["correlation_id"]):
        try:
            return await bus.call(
                exchange,
                routing_key,
                body.model_dump_json().encode(),
                message_id=message_id,
                correlation_id=request["correlation_id"],
                org=principal.org,
                user=principal.user,
                wait=wait,
                persistent=persistent,
            )
        except Unavailable as exc:
            raise problems.Unavailable(str(exc)) from None


async def send_command(request: web.Request, routing_key: str, command: BaseModel) -> web.Response:
    message_id = message_id_for(request, request["principal"])
    request["command_id"] = message_id
    service = routing_key.split(".")[0]
    answer = await _call(
        request,
        topology.COMMANDS,
        routing_key,
        command,
        message_id,
        request.app[SETTINGS].reply_timeout,
        persistent=True,
    )
    if answer is None:  # the broker confirmed it (else 503): it is queued, and will be done
        return json_response(
            202,
            {"command": {"id": message_id, "status": "accepted"}},
            {"Location": f"/api/commands/{service}/{message_id}"},
        )
    return json_response(answer.status, answer.body, {"Idempotent-Replayed": "true"} if answer.replayed else None)


async def ask(request: web.Request, routing_key: str, query: BaseModel) -> web.Response:
    """A read: `routing_key` is `<service>.query.<name>` (the query model's ROUTING_KEY)."""
    answer = await answer_of(request, routing_key, query)
    return json_response(answer.status, answer.body)


async def answer_of(request: web.Request, routing_key: str, query: BaseModel) -> Answer:
    """The service's answer to a query, for a view that does more with it than pass it on."""
    answer = await _call(
        request,
        topology.QUERIES,
        routing_key,
        query,
        str(uuid4()),
        request.app[SETTINGS].query_timeout,
        persistent=False,
    )
    if answer is None:
        raise problems.Unavailable(f"the {routing_key.split('.')[0]} service did not answer in time")
    return answer


async def command_status(request: web.Request) -> web.Response:
    service = request.match_info["service"]
    if service not in request.app[SERVICES]:
        raise problems.NotFound(f"there is no service {service!r}")
    query = path_ids(GetCommand, commandId=request.match_info["commandId"])
    pending = json_response(202, {"command": {"id": query.commandId, "status": "accepted"}}, {"Location": request.path})
    try:
        response = await ask(request, f"{service}.query.command", query)
    except problems.Unavailable:
        return pending  # the service is down: the command is still accepted, and waits for it
    return pending if response.status == 202 else response


# Operations -----------------------------------------------------------------
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Public: answered from checks made at most once a second (services/gateway/readiness.py)."""
    status, body = await request.app[READINESS].answer()
    return web.json_response(body, status=status)


def not_modified(request: web.Request, opaque: str) -> bool:
    """If-None-Match (RFC 9110 13.1.2) holds the representation's tag `opaque` (unquoted; a weak comparison, as
    the RFC asks for GET), or is `*` itself: a quoted "*" is a tag like any other, which names nothing of ours.
    What aiohttp cannot parse is no tag (a 200, never an error)."""
    given = request.headers.get("If-None-Match", "").strip()
    return given == "*" or any(tag.value == opaque for tag in request.if_none_match or ())
