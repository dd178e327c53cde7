"""CORS for `/api/*` and `/sdk/*`: a page on an origin of CORS_ALLOWED_ORIGINS may call the API and import
the SDK; any other origin gets no `Access-Control-Allow-Origin`, so its browser keeps the answers from it.

    OPTIONS + Origin + Access-Control-Request-Method ──► listed origin ──► 204, the methods, headers, max-age
                        (the `preflight` middleware)  └─ other origin ──► 403 problem, no Allow-Origin
    any other request ──► the handler, untouched ──► `headers` (on_response_prepare): listed origin ──►
        Allow-Origin: that origin, Expose-Headers; and, once any origin is listed, Vary: Origin on every answer

With no origin listed (the default) app.py wires neither: a preflight then gets the route's own answer (a
401 under /api/), and no answer carries a CORS header. No credentials mode: the API takes bearer tokens,
never cookies, so `Allow-Credentials` is never sent. With origins listed, an unlisted origin's preflight is
refused outright, a 403 problem+json naming the setting (passed on, it would be the route's confusing 401
or 405); its other requests still reach their handler (a same-origin POST
carries an Origin too), and only its browser is told nothing. A preflight is answered before `authenticate`
(it carries no token) but inside `context`, which only logs and counts: preflights are logged too.

Why not aiohttp-cors: it is configured route by route (an OPTIONS route added per resource), so a request
no route takes (the 404 of a mistyped path, the 405 of a wrong method, a preflight to either) gets nothing
from it, and it would need every route of the table wrapped in step with routes.py. The headers go on in
on_response_prepare rather than in a middleware because some answers are sent inside their handler (a
document's bytes, streamed: downloads.py) and a middleware would get them already sent; the hook sees
every answer as it leaves: problems of every middleware, 304s, aiohttp's own last-resort errors.
"""

import re
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from services.gateway.errors import json_response
from shared import logging
from shared.problems import http_error

SCOPE = ("/api/", "/sdk/")
ALLOW_METHODS = "GET, HEAD, POST, DELETE"
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key"
EXPOSE_HEADERS = "Idempotent-Replayed, Location, Retry-After"
MAX_AGE = "600"  # seconds a browser may keep a preflight's answer: a change of the list is seen within 10 min
DEFAULT_PORTS = {"http": 80, "https": 443}
ORIGIN = re.compile(r"(https?)://([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?", re.I)


def origin(entry: str) -> str:
    """An entry of CORS_ALLOWED_ORIGINS as browsers write the Origin header (lower case, no default port);
    ValueError naming it if it is not `http(s)://host[:port]`."""
    match = ORIGIN.fullmatch(entry)
    port = int(match[3]) if match and match[3] else None
    if match is None or port == 0 or (port or 0) > 65535:
        raise ValueError(
            f"{logging.printable(entry)!r} is not an origin: http(s)://host[:port], the host in ASCII (punycode),"
            " no path (not even a /), no user, no wildcard"
        )
    scheme, host = match[1].lower(), match[2].lower()
    return f"{scheme}://{host}" if port in (None, DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def origins(setting: str) -> frozenset[str]:
    return frozenset(origin(entry.strip()) for entry in setting.split(",") if entry.strip())


def in_scope(request: web.BaseRequest) -> bool:
    return request.path.startswith(SCOPE)


def preflight(allowed: frozenset[str]) -> Middleware:
    @web.middleware
    async def answer(request: web.Request, handler: Handler) -> web.StreamResponse:
        asked = request.method == hdrs.METH_OPTIONS and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
        if not (asked and in_scope(request) and hdrs.ORIGIN in request.headers):
            return await handler(request)
        if request.headers[hdrs.ORIGIN] not in allowed:
            detail = f"origin {logging.printable(request.headers[hdrs.ORIGIN])!r} is not in CORS_ALLOWED_ORIGINS"
            return json_response(403, http_error(403, "Forbidden", detail))
        return web.Response(
            status=204,
            headers={
                hdrs.ACCESS_CONTROL_ALLOW_METHODS: ALLOW_METHODS,
                hdrs.ACCESS_CONTROL_ALLOW_HEADERS: ALLOW_HEADERS,
                hdrs.ACCESS_CONTROL_MAX_AGE: MAX_AGE,
            },
        )

    return answer


def headers(allowed: frozenset[str]) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    async def add(request: web.Request, response: web.StreamResponse) -> None:
        if not allowed or not in_scope(request):
            return  # none listed: same origin only, not a CORS header anywhere
        vary = [v.strip() for value in response.headers.getall(hdrs.VARY, ()) for v in value.split(",") if v.strip()]
        if not any(v == "*" or v.lower() == "origin" for v in vary):
            response.headers[hdrs.VARY] = ", ".join([*vary, "Origin"])  # the answer differs by Origin: caches
        if (asked := request.headers.get(hdrs.ORIGIN)) in allowed:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = asked
            response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = EXPOSE_HEADERS

    return add
