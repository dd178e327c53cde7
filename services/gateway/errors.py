"""Every error leaves the gateway as an RFC 9457 problem.

A refusal (shared/problems.py: a service's, passed on, or the HTTP edge's own: malformed JSON, a bad
signature, too large...) is answered from its row, with its headers. The framework's own HTTP errors
(no route 404, a wrong method 405...) and anything unexpected (500, logged) are `about:blank` problems.
"""

import json
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from shared import logging
from shared.problems import Rejected, http_error

PROBLEM_JSON = "application/problem+json"
log = logging.get("gateway.errors")


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    content_type = PROBLEM_JSON if status >= 400 else "application/json"
    return web.Response(status=status, text=json.dumps(body), content_type=content_type, headers=headers)


def refusal_response(refusal: Rejected, headers: dict[str, str] | None = None) -> web.Response:
    """A refusal's response: its body and status, its class's headers and the ones of this answer."""
    return json_response(refusal.status, refusal.body, {**refusal.headers, **(headers or {})})


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Rejected as exc:  # (the websocket's too: raised before the upgrade, nothing is sent yet)
        return refusal_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        title = exc.reason or "Error"
        body = http_error(exc.status, title, f"{request.method} {request.path}: {title.lower()}")
        return json_response(exc.status, body, {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")})
    except Exception:
        log.exception("gateway.unhandled_error", path=request.path)
        return json_response(500, http_error(500, "Internal error", "an unexpected error occurred; it has been logged"))
