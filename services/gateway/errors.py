"""Every error leaves the gateway as an RFC 9457 problem; the mapping lives here."""
import json
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from shared import logging
from shared.contracts.envelope import problem

PROBLEM_JSON = "application/problem+json"
log = logging.get("gateway.errors")


class Problem(web.HTTPException):
    """Raise from a view to answer with a problem body."""

    def __init__(self, status: int, title: str, detail: str, type_: str = "about:blank",
                 headers: dict[str, str] | None = None, **extra: Any):
        self.status_code = status
        super().__init__(headers=headers, text=json.dumps(problem(status, title, detail, type_, **extra)),
                         content_type=PROBLEM_JSON)


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    content_type = PROBLEM_JSON if status >= 400 else "application/json"
    return web.Response(status=status, text=json.dumps(body), content_type=content_type, headers=headers)


def validation_problem(exc: ValidationError, detail: str = "the request body is not valid") -> Problem:
    errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
    return Problem(422, "Invalid request", detail, "/problems/validation", errors=errors)


def unavailable(detail: str) -> Problem:
    return Problem(503, "Service unavailable", detail, "/problems/unavailable", headers={"Retry-After": "1"})


def unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, "/problems/unauthorized", headers={"WWW-Authenticate": "Bearer"})


@web.middleware
async def problems(request: web.Request, handler):  # type: ignore[no-untyped-def]
    try:
        return await handler(request)
    except Problem:
        raise
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == PROBLEM_JSON:
            raise
        title = exc.reason or "Error"
        return json_response(exc.status, problem(exc.status, title, f"{request.method} {request.path}: {title.lower()}"),
                             headers={k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")})
    except Exception:
        log.exception("gateway.unhandled_error", path=request.path)
        return json_response(500, problem(500, "Internal error", "an unexpected error occurred; it has been logged"))
