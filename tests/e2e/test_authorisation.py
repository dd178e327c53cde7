"""The authorisation matrix: every button, every read and the websocket, against every bad token;
and no other organisation's data in any answer. Made from the one table (shared/buttons.py), so a
new button is in the matrix the day it is declared."""

import base64
import json
import re
import time

import aiohttp
import jwt
import pytest

from shared.buttons import BUTTONS, READS
from tests.conftest import Api
from tests.support.stack import TEST_SECRET

FAKE_ID = "00000000-0000-4000-8000-000000000000"


def _b64(part: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")


BAD_TOKENS = {
    "missing": None,
    "not a bearer": "Basic Zm9vOmJhcg==",
    "malformed": "Bearer not.a.jwt",
    "expired": "Bearer "
    + jwt.encode({"sub": "u", "org": "o", "exp": int(time.time()) - 60}, TEST_SECRET, algorithm="HS256"),
    "wrong signature": "Bearer "
    + jwt.encode(
        {"sub": "u", "org": "o", "exp": int(time.time()) + 600}, "another-secret-" + "y" * 40, algorithm="HS256"
    ),
    "alg none": "Bearer "
    + _b64({"alg": "none", "typ": "JWT"})
    + "."
    + _b64({"sub": "u", "org": "o", "exp": int(time.time()) + 600})
    + ".",
    "no org claim": "Bearer " + jwt.encode({"sub": "u", "exp": int(time.time()) + 600}, TEST_SECRET, algorithm="HS256"),
}


def _concrete(path: str) -> str:
    return re.sub(r"{\w+}", FAKE_ID, path)


ENDPOINTS = sorted(
    {("POST", _concrete(b.path)) for b in BUTTONS}
    | {("GET", _concrete(r.path)) for r in READS}
    | {("GET", "/api/leads"), ("GET", "/api/leads/statuses"), ("GET", f"/api/commands/leads/{FAKE_ID}")}
)


@pytest.mark.parametrize("token", list(BAD_TOKENS), ids=list(BAD_TOKENS))
async def test_every_endpoint_refuses_a_bad_token(api: Api, token: str) -> None:
    header = BAD_TOKENS[token]
    refused = []
    for method, path in ENDPOINTS:
        headers = {"Authorization": header} if header else {}
        async with api.http.request(method, api.url + path, data=b"{}", headers=headers) as response:
            body = await response.json(content_type=None)
            if (response.status, response.content_type, response.headers.get("WWW-Authenticate")) != (
                401,
                "application/problem+json",
                "Bearer",
            ) or body.get("status") != 401:
                refused.append((method, path, response.status))
    assert refused == [], f"not refused with 401 problem+json: {refused}"


@pytest.mark.parametrize("token", list(BAD_TOKENS), ids=list(BAD_TOKENS))
async def test_the_websocket_refuses_a_bad_token(api: Api, token: str) -> None:
    header = BAD_TOKENS[token]
    raw = header.split(" ", 1)[1] if header and header.startswith("Bearer ") else (header or "")
    async with api.http.ws_connect(api.url.replace("http", "ws") + "/ws") as ws:
        await ws.send_json({"type": "hello", "token": raw, "topics": ["#"]})
        message = await ws.receive(timeout=10)
        closed = message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        if not closed:  # an error frame first, then the close
            assert json.loads(message.data)["type"] == "error", message.data
            message = await ws.receive(timeout=10)
        assert ws.close_code == 4401 or message.data == 4401, (message, ws.close_code)


async def test_no_read_shows_another_organisations_lead(api: Api) -> None:
    """A lead of one organisation, read through every read that takes a lead by another: 404, as unknown."""
    secret_name = "Grace Secret-Hopper"
    mine = (await api.create_lead(secret_name))["id"]
    stranger = api.as_user("stranger-org")
    leaks = []
    for row in READS:
        if "{leadId}" not in row.path:
            continue
        status, _, body = await stranger.get(row.path.replace("{leadId}", mine))
        if status != 404 or secret_name in json.dumps(body):  # (the detail may echo the id asked for)
            leaks.append((row.path, status))
    assert leaks == []
    status, _, page = await stranger.get("/api/leads")
    assert status == 200 and mine not in json.dumps(page) and secret_name not in json.dumps(page)


async def test_no_button_acts_on_another_organisations_lead(api: Api) -> None:
    """Every button that names a lead, pressed by another organisation on ours: 404, and the lead is untouched."""
    mine = (await api.create_lead())["id"]
    stranger = api.as_user("stranger-org")
    acted = []
    for row in BUTTONS:
        fields = row.command.model_fields
        if "leadId" not in fields or row.upload:
            continue
        body = {name: _example(info.annotation) for name, info in fields.items() if info.is_required()}
        body["leadId"] = mine
        status, _, answer = await stranger.post(row.path, body)
        if status not in (404, 422) or (status == 422 and "leadId" in json.dumps(answer)):
            acted.append((row.path, status, answer))
    assert acted == []
    status, _, lead = await api.get(f"/api/leads/{mine}")
    assert status == 200 and lead["lead"]["status"] == "new"


def _example(annotation: object) -> object:
    """A value of the field's kind good enough to reach the ownership check."""
    text = str(annotation)
    if "datetime" in text.lower():
        return "2031-01-01T10:00:00+00:00"
    if "int" in text:
        return 100
    if "list" in text:
        return [FAKE_ID]
    if "LeadStatus" in text:
        return "contacted"
    return "USD" if "Currency" in text else "x"
