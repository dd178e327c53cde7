"""The OpenAPI 3.1 document, built from the button table (shared/buttons.py) and the same pydantic
models the services use."""
import re
from functools import cache
from typing import Any

from aiohttp import web
from pydantic.json_schema import models_json_schema

from shared.buttons import BUTTONS, READS
from shared.contracts import documents as D
from shared.contracts import leads as L
from shared.contracts.declare import Button

REF = "#/components/schemas/{model}"
PROBLEM = {"$ref": "#/components/schemas/Problem"}
ACCEPTED = {"description": "No answer within the reply timeout: the command is queued and will take effect; "
                          "poll Location for the final answer.",
            "headers": {"Location": {"schema": {"type": "string"}}},
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}}


def _ref(model: type) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problems(*codes: int) -> dict[str, Any]:
    reasons = {400: "Malformed request or Idempotency-Key", 401: "Missing or invalid token", 404: "Not found",
               409: "Refused by the rules or by a concurrent change", 413: "The file is larger than the limit",
               415: "Not multipart/form-data, a declared type the file's bytes contradict, or a part's "
               "Content-Transfer-Encoding or Content-Encoding that is not read",
               416: "The range is outside the content", 422: "Invalid input, or a key reused with "
               "another body", 503: "Broker or service unreachable, or the broker did not confirm in time: retry "
               "with the same Idempotency-Key"}
    return {str(c): {"description": reasons[c], "content": {"application/problem+json": {"schema": PROBLEM}}}
            for c in codes}


def _command(summary: str, body: dict[str, Any], ok: tuple[int, dict[str, Any]]) -> dict[str, Any]:
    return {"summary": summary, "parameters": [{"$ref": "#/components/parameters/IdempotencyKey"}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {str(ok[0]): _json(ok[1], "The answer"), "202": ACCEPTED,
                          **_problems(400, 401, 404, 409, 422, 503)}}


# A read's query parameter may be empty: the gateway takes `?status=&limit=` (a cleared filter) as not given.
ABSENT = {"const": "", "description": "empty: as if not given"}


def _read(summary: str, model: type, path: list[str], query: list[dict[str, Any]]) -> dict[str, Any]:
    return {"summary": summary,
            "parameters": [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                           for n in path] + query,
            "responses": {"200": _json(_ref(model), summary), **_problems(401, 404, *([422] if query else []), 503)}}


def _query_parameters(schema: dict[str, Any], path: list[str]) -> list[dict[str, Any]]:
    """The fields of a read's query model that the path does not fill: its query string."""
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        if name in path:
            continue
        alternatives = [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]  # None: not given
        parameters.append({"name": name, "in": "query", "required": False,
                           "schema": {"anyOf": [*alternatives, ABSENT]}})
    return parameters


def _webhook(summary: str) -> dict[str, Any]:
    return {"summary": summary, "security": [],
            "parameters": [{"name": "X-Twilio-Signature", "in": "header", "required": True,
                            "schema": {"type": "string"}}],
            "requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}},
            "responses": {"204": {"description": "Accepted"}, "200": {"description": "Accepted (TwiML)"},
                          "400": {"description": "A body that is not a readable form (not form-urlencoded, a charset "
                                                 "other than UTF-8, ASCII or Latin-1, bytes not in it)"},
                          "403": {"description": "Bad signature: nothing changes"},
                          "413": {"description": "A body over 64 KiB"},
                          "503": {"description": "The broker did not confirm the command: Twilio retries"}}}


def _one(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    return schemas[0] if len(schemas) == 1 else {"oneOf": schemas}


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
            for n in re.findall(r"{(\w+)}", path)]


def _button_operations() -> dict[str, dict[str, Any]]:
    """One POST per path of the button table; several buttons on a path are a oneOf of their bodies."""
    grouped: dict[str, list[Button]] = {}
    for button in BUTTONS:
        grouped.setdefault(button.path, []).append(button)
    paths = {}
    for path, rows in grouped.items():
        operation = _command("; or ".join(b.summary for b in rows), _one([_ref(b.command) for b in rows]),
                             (rows[0].status, _one([_ref(b.reply) for b in rows])))
        operation["operationId"] = rows[0].name if len(rows) == 1 else "_or_".join(b.name for b in rows)
        operation["parameters"] += _path_parameters(path)
        operation["x-routing-keys"] = [b.routing_key for b in rows]
        if rows[0].upload:
            _upload(operation, rows[0].upload)
        paths[path] = {"post": operation}
    return paths


def _upload(operation: dict[str, Any], part: str) -> None:
    """A file in a multipart body instead of JSON: the gateway stores it and sends its claim check."""
    operation["requestBody"] = {"required": True, "content": {"multipart/form-data": {
        "schema": {"type": "object", "required": [part],
                   "properties": {part: {"type": "string", "contentMediaType": "application/octet-stream",
                                         "description": "The file, with its name (filename) and, optionally, "
                                                        "its Content-Type (checked against its first bytes)"}}}}}}
    operation["responses"].update(_problems(413, 415))


def _document_paths() -> dict[str, Any]:
    """The bytes of a document, and DELETE as another way to press its delete button."""
    document_id = [{"name": "documentId", "in": "path", "required": True, "schema": {"type": "string"}}]
    sent = {"ETag": {"description": "\"<sha256>\" of the bytes", "schema": {"type": "string"}},
            "Content-Disposition": {"description": "attachment, with the file name", "schema": {"type": "string"}},
            "Accept-Ranges": {"schema": {"const": "bytes"}}}
    content = {"*/*": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}
    return {
        "/api/documents/{documentId}/content": {"get": {
            "summary": "A document's bytes (Range and If-None-Match honoured)", "operationId": "download_document",
            "parameters": [*document_id, *({"name": n, "in": "header", "required": False,
                                             "schema": {"type": "string"}} for n in ("Range", "If-None-Match"))],
            "responses": {"200": {"description": "The bytes", "headers": sent, "content": content},
                          "206": {"description": "The range asked for (Content-Range)", "headers": sent,
                                  "content": content},
                          "304": {"description": "Not modified: If-None-Match has the ETag"},
                          **_problems(401, 404, 416, 503)}}},
        "/api/documents/{documentId}": {"delete": {
            "summary": "Delete a document (as POST /api/documents/{documentId}/delete)",
            "operationId": "delete_document_by_delete",
            "parameters": [{"$ref": "#/components/parameters/IdempotencyKey"}, *document_id],
            "responses": {"200": _json(_ref(D.DocumentReply), "The deleted document"), "202": ACCEPTED,
                          **_problems(400, 401, 404, 422, 503)}}},
    }


def _read_operations(schemas: dict[str, Any]) -> dict[str, dict[str, Any]]:
    paths = {}
    for row in READS:
        path = re.findall(r"{(\w+)}", row.path)
        operation = _read(row.summary, row.reply, path, _query_parameters(schemas[row.query.__name__], path))
        operation["operationId"] = row.name
        paths.setdefault(row.path, {})["get"] = operation
    return paths


@cache
def document() -> dict[str, Any]:
    models = [*{m: None for b in BUTTONS for m in (b.command, b.reply)},
              *{m: None for r in READS for m in (r.query, r.reply)}, L.StatusesReply]
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas = defs.get("$defs", {})
    moves = L.statuses_reply().model_dump(mode="json")
    schemas["LeadStatus"]["x-moves"] = moves["moves"]  # the allowed moves, the same table the service enforces
    schemas["Problem"] = {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "errors": {"type": "array", "items": {"type": "object"}}}}
    schemas["Accepted"] = {"type": "object", "properties": {"command": {"type": "object", "properties": {
        "id": {"type": "string"}, "status": {"const": "accepted"}}}}}
    paths = _button_operations()
    for path, operations in (*_read_operations(schemas).items(), *_document_paths().items()):
        paths.setdefault(path, {}).update(operations)
    paths.update({
        "/api/leads/statuses": {"get": {
            "summary": "The lead statuses and the moves allowed from each (the rule the service enforces)",
            "responses": {"200": {**_json(_ref(L.StatusesReply), "Statuses and moves"),
                                  "content": {"application/json": {"schema": _ref(L.StatusesReply),
                                                                   "example": moves}}},
                          **_problems(401)}}},
        "/webhooks/twilio/status": {"post": _webhook("Twilio status callback (X-Twilio-Signature checked)")},
        "/webhooks/twilio/inbound": {"post": _webhook("Twilio inbound message: STOP / START (signature checked)")},
        "/dev/token": {"post": {
            "summary": "Development only (DEV_LOGIN): a token for the demo agent; 404 when off",
            "security": [], "responses": {"200": {"description": "{token, org, user, expires_in}"},
                                          "404": {"description": "DEV_LOGIN is off"}}}},
        "/api/commands/{service}/{commandId}": {"get": {
            "summary": "The final answer of an accepted command (202 until it exists)",
            "parameters": [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                           for n in ("service", "commandId")],
            "responses": {"200": {"description": "The command's answer, as it would have been given"},
                          "202": ACCEPTED, **_problems(401, 404, 503)}}},
    })
    return {
        "openapi": "3.1.0",
        "info": {"title": "CRM buttons gateway", "version": "1.0.0"},
        "security": [{"bearer": []}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "parameters": {"IdempotencyKey": {"name": "Idempotency-Key", "in": "header", "required": False,
                                              "schema": {"type": "string", "pattern": r"^[A-Za-z0-9_\-.:]{1,255}$"}}},
        },
        "paths": paths,
    }


async def serve(request: web.Request) -> web.Response:
    return web.json_response(document())
