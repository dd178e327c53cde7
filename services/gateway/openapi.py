"""The OpenAPI 3.1 document, built from the button table (shared/buttons.py), the gateway's other
routes (services/gateway/catalog.py's ROUTES) and the same pydantic models the services use.
Each button's operation also names the problem types it may answer (`x-refusals`, shared/problems.py)
and the events it publishes (`x-events`), as GET /api/buttons does."""

from functools import cache
from typing import Any

from aiohttp import web
from pydantic.json_schema import models_json_schema

from services.gateway.catalog import ROUTES, Route, types
from shared.buttons import BUTTONS, READS
from shared.contracts import leads as L
from shared.contracts.declare import EVERY_BUTTON, Button, Refusals, path_fields
from shared.problems import PROBLEMS

REF = "#/components/schemas/{model}"
PROBLEM = {"$ref": "#/components/schemas/Problem"}
ACCEPTED = {
    "description": "No answer within the reply timeout: the command is queued and will take effect; "
    "poll Location for the final answer.",
    "headers": {"Location": {"schema": {"type": "string"}}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
}


def _ref(model: type) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


REASONS = {
    400: "Malformed request or Idempotency-Key",
    401: "Missing or invalid token",
    404: "Not found",
    409: "Refused by the rules or by a concurrent change",
    413: "The file is larger than the limit",
    415: "Not multipart/form-data, a declared type the file's bytes contradict, or a part's "
    "Content-Transfer-Encoding or Content-Encoding that is not read",
    416: "The range is outside the content",
    422: "Invalid input, or a key reused with another body",
    503: "Broker or service unreachable, or the broker did not confirm in time: retry with the same Idempotency-Key",
}


def _problems(*codes: int) -> dict[str, Any]:
    return {str(c): _problem(REASONS[c]) for c in codes}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": PROBLEM}}}


def _refused(refusals: Refusals, described: dict[int, Any] | None = None) -> dict[str, Any]:
    """A problem answer per status of these refusals: described as given, else as usual, else by their titles."""
    titles: dict[int, list[str]] = {}
    for refusal in refusals:
        status, title, _ = PROBLEMS[refusal]
        titles.setdefault(status, []).append(title)
    given = described or {}
    return {
        str(status): _problem(
            given[status]
            if isinstance(given.get(status), str)
            else REASONS.get(status, "; ".join(dict.fromkeys(names)))
        )
        for status, names in sorted(titles.items())
    }


def _command(summary: str, body: dict[str, Any], ok: tuple[int, dict[str, Any]]) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": [{"$ref": "#/components/parameters/IdempotencyKey"}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {
            str(ok[0]): _json(ok[1], "The answer"),
            "202": ACCEPTED,
            **_problems(400, 401, 404, 409, 422, 503),
        },
    }


# A read's query parameter may be empty: the gateway takes `?status=&limit=` (a cleared filter) as not given.
ABSENT = {"const": "", "description": "empty: as if not given"}


def _read(summary: str, model: type, path: list[str], query: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in path] + query,
        "responses": {"200": _json(_ref(model), summary), **_problems(401, 404, *([422] if query else []), 503)},
    }


def _query_parameters(schema: dict[str, Any], path: list[str]) -> list[dict[str, Any]]:
    """The fields of a read's query model that the path does not fill: its query string."""
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        if name in path:
            continue
        alternatives = [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]  # None: not given
        parameters.append(
            {"name": name, "in": "query", "required": False, "schema": {"anyOf": [*alternatives, ABSENT]}}
        )
    return parameters


def _one(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    return schemas[0] if len(schemas) == 1 else {"oneOf": schemas}


def _path_parameters(fields: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in fields]


def _button_operations() -> dict[str, dict[str, Any]]:
    """One POST per path of the button table; several buttons on a path are a oneOf of their bodies."""
    grouped: dict[str, list[Button]] = {}
    for button in BUTTONS:
        grouped.setdefault(button.path, []).append(button)
    paths = {}
    for path, rows in grouped.items():
        operation = _command(
            "; or ".join(b.summary for b in rows),
            _one([_ref(b.command) for b in rows]),
            (rows[0].status, _one([_ref(b.reply) for b in rows])),
        )
        operation["operationId"] = rows[0].name if len(rows) == 1 else "_or_".join(b.name for b in rows)
        operation["parameters"] += _path_parameters(rows[0].fields)
        operation["x-routing-keys"] = [b.routing_key for b in rows]
        refusals = tuple(r for b in rows for r in b.all_refusals)
        for status, answer in _refused(refusals).items():
            operation["responses"].setdefault(status, answer)
        operation["x-refusals"] = types(refusals)
        operation["x-events"] = list(dict.fromkeys(e.TYPE for b in rows for e in b.events))
        if rows[0].upload:
            _upload(operation, rows[0].upload)
        paths[path] = {"post": operation}
    return paths


def _upload(operation: dict[str, Any], part: str) -> None:
    """A file in a multipart body instead of JSON: the gateway stores it and sends its claim check."""
    operation["requestBody"] = {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [part],
                    "properties": {
                        part: {
                            "type": "string",
                            "contentMediaType": "application/octet-stream",
                            "description": "The file, with its name (filename) and, optionally, "
                            "its Content-Type (checked against its first bytes)",
                        }
                    },
                }
            }
        },
    }
    operation["responses"].update(_problems(413, 415))


def _read_operations(schemas: dict[str, Any]) -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = {}
    for row in READS:
        path = list(row.fields)
        operation = _read(row.summary, row.reply, path, _query_parameters(schemas[row.query.__name__], path))
        operation["operationId"] = row.name
        paths.setdefault(row.path, {})["get"] = operation
    return paths


def _route_operation(route: Route) -> dict[str, Any]:
    """A row of ROUTES: a route that is not a button or a read (or another way to press a button)."""
    button = route.button
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": route.name,
        "parameters": [
            *([{"$ref": "#/components/parameters/IdempotencyKey"}] if button else []),
            *_path_parameters(path_fields(route.path)),
            *route.parameters,
        ],
    }
    if route.public:
        operation["security"] = []
    responses: dict[str, Any] = {}
    reply = button.reply if button else route.reply
    if reply is not None:
        responses["200"] = _json(_ref(reply), route.summary)
        if route.example is not None:
            responses["200"]["content"]["application/json"]["example"] = route.example
    if button or route.accepted:
        responses["202"] = ACCEPTED
    for status, answer in route.answers.items():
        if isinstance(answer, str) and str(status) in responses:  # a better word for the reply's 200
            responses[str(status)]["description"] = answer
        else:
            responses[str(status)] = {"description": answer} if isinstance(answer, str) else answer
    refusals = (*button.refusals, *EVERY_BUTTON) if button else route.refusals  # no body: none of its refusals
    responses.update(_refused(refusals, route.answers))
    operation["responses"] = dict(sorted(responses.items()))
    if route.body is not None:
        operation["requestBody"] = route.body
    return operation


@cache
def document() -> dict[str, Any]:
    models = [
        *{m: None for b in BUTTONS for m in (b.command, b.reply)},
        *{m: None for r in READS for m in (r.query, r.reply)},
        *{r.reply: None for r in ROUTES if r.reply},
    ]
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas = defs.get("$defs", {})
    moves = L.statuses_reply().model_dump(mode="json")
    schemas["LeadStatus"]["x-moves"] = moves["moves"]  # the allowed moves, the same table the service enforces
    schemas["Problem"] = {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object"}},
        },
    }
    schemas["Accepted"] = {
        "type": "object",
        "properties": {
            "command": {"type": "object", "properties": {"id": {"type": "string"}, "status": {"const": "accepted"}}}
        },
    }
    paths = _button_operations()
    for path, operations in _read_operations(schemas).items():
        paths.setdefault(path, {}).update(operations)
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _route_operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "CRM buttons gateway", "version": "1.0.0"},
        "security": [{"bearer": []}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "parameters": {
                "IdempotencyKey": {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "pattern": r"^[A-Za-z0-9_\-.:]{1,255}$"},
                }
            },
        },
        "paths": paths,
    }


async def serve(request: web.Request) -> web.Response:
    return web.json_response(document())
