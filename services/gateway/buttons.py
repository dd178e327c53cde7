"""The buttons and reads: one view each, made from their rows (shared/buttons.py); the few reads
that are not one query of one id (the lead list, the moves table) and the development sign-in."""

import ipaddress
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from pydantic import ValidationError

from services.gateway import uploads
from services.gateway.auth import issue
from services.gateway.errors import json_response
from services.gateway.keys import SETTINGS
from services.gateway.views import ask, parse, read_json, send_command
from shared import problems
from shared.contracts.declare import Button, Read
from shared.contracts.leads import statuses_reply

View = Callable[[web.Request], Awaitable[web.StreamResponse]]


def press(buttons: Sequence[Button], body: bool = True) -> View:
    """The view of one path: its body (and `{field}`s of the path) parsed as the button's command, sent.
    Several buttons on one path: the body's `selector` field picks one (two of them is a 422).
    An upload button reads a multipart body instead: the file goes to the blob store, its claim check
    into the command (uploads.py). `body=False`: the path alone is the command (a DELETE alias)."""

    async def view(request: web.Request) -> web.Response:
        if buttons[0].upload:
            given = await uploads.read(request, buttons[0].upload)
        else:
            given = await read_json(request) if body else {}
        data = {**given, **request.match_info}
        button = pick(buttons, data)
        return await send_command(request, button.routing_key, parse(button.command, data))

    return view


def pick(buttons: Sequence[Button], data: dict) -> Button:
    if len(buttons) == 1:
        return buttons[0]
    given = [b for b in buttons if b.selector in data]
    if len(given) > 1:
        names = [b.selector for b in given if b.selector]
        raise problems.Invalid(
            f"give one of {' or '.join(names)}, not both",
            errors=[{"field": names[-1], "message": f"not with {names[0]}"}],
        )
    return given[0] if given else buttons[0]


def read(row: Read) -> View:
    """A read of the ids in its path (one that cannot be an id is a 404) and of its query string (422)."""
    names = row.fields

    async def view(request: web.Request) -> web.Response:
        ids = {n: request.match_info[n] for n in names}
        present = query_string(request, *ids)
        try:
            query = row.query.model_validate({**present, **ids})
        except ValidationError as exc:
            if any(e["loc"] and e["loc"][0] in ids for e in exc.errors()):  # an id that cannot be one names nothing
                raise problems.NotFound(f"there is nothing at {request.path}") from None
            raise problems.invalid_body(exc, "the query string is not valid") from None
        return await ask(request, row.query.ROUTING_KEY, query)

    return view


def query_string(request: web.Request, *taken: str) -> dict[str, str]:
    """The query string's parameters, each given at most once (`?limit=1&limit=2` is a 422, not a guess);
    an empty value means absent. `taken`: names the path already fills."""
    repeated = sorted({k for k in request.query if len(request.query.getall(k)) > 1})
    if repeated:
        raise problems.Invalid(
            "the query string is not valid", errors=[{"field": k, "message": "given more than once"} for k in repeated]
        )
    return {k: v for k, v in request.query.items() if v != "" and k not in taken}


async def lead_statuses(request: web.Request) -> web.Response:
    """The statuses and their allowed moves, from the contract the leads service enforces."""
    return json_response(200, statuses_reply().model_dump(mode="json"))


# Development sign-in ----------------------------------------------------------
DEV_TOKEN_TTL_SECONDS = 12 * 3600


def _dev_login_on(request: web.Request) -> None:
    """Only with DEV_LOGIN, only in development, and only for a request from this machine (a loopback peer:
    the gateway may listen on other addresses, and a token to anyone who asks must not leave the machine)."""
    settings = request.app[SETTINGS]
    if not settings.dev_login or settings.app_env != "development":  # off: as if the route did not exist
        raise problems.NotFound(f"there is nothing at {request.path}")
    if not _loopback(request.remote):
        raise problems.Forbidden(
            "the development sign-in answers requests from this machine only "
            "(127.0.0.1 or ::1); use a token (make token)"
        )


def _loopback(remote: str | None) -> bool:
    try:
        return ipaddress.ip_address(remote or "").is_loopback
    except ValueError:  # a Unix socket, or no peer address
        return False


async def dev_login(request: web.Request) -> web.Response:
    """Whether "sign in as demo agent" is offered, and as whom."""
    _dev_login_on(request)
    settings = request.app[SETTINGS]
    return json_response(200, {"org": settings.dev_login_org, "user": settings.dev_login_user})


async def dev_token(request: web.Request) -> web.Response:
    _dev_login_on(request)
    settings = request.app[SETTINGS]
    token = issue(
        settings.jwt_secret.get_secret_value(),
        settings.dev_login_org,
        settings.dev_login_user,
        DEV_TOKEN_TTL_SECONDS,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    return json_response(
        200,
        {
            "token": token,
            "org": settings.dev_login_org,
            "user": settings.dev_login_user,
            "expires_in": DEV_TOKEN_TTL_SECONDS,
        },
    )
