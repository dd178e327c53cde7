"""The control API tests use (not part of Twilio's): misbehaviour, reset, what was received, inbound messages.
It answers on 127.0.0.1 only (app.py, `control_on_loopback`), and the sandbox never runs in production.

    POST /_sandbox/behaviour {"mode": "ok"|"error"|"slow", "status": 429|5xx, "delay": s, "count": n,
                              "delivery": "delivered"|"undelivered"|"failed",
                              "queued_for": s, "smart_encoding": true|false}
                             mode/status/delay: how the next `count` calls are answered (then "ok" again);
                             the rest, how accepted messages go on, until the next POST here or reset:
                               delivery        their last status
                               queued_for      they stay "queued" that long, date_sent null, so that a
                                               DateSent filter does not list them (date_created is set)
                               smart_encoding  their body stored and listed as Twilio's Smart Encoding
                                               rewrites it (“ ” ‘ ’ – — … and odd spaces ─► " ' - ... and
                                               a space, if the body then fits GSM-7); a send's own
                                               SmartEncoded field overrides it
    POST /_sandbox/reset     behaviour ok, messages forgotten, pending callbacks cancelled
    GET  /_sandbox/messages  {"calls": POSTs received (refused ones too), "messages": [oldest first]}
    POST /_sandbox/inbound   {"from", "to", "body"} ─► signed webhook to SANDBOX_INBOUND_URL, never anywhere else
                             (a "url" is refused: 400) ─► {"status": that endpoint's answer}
"""

from typing import Any

import aiohttp
from aiohttp import web

from services.twilio_sandbox.state import SANDBOX, STATUS_CODES, Behaviour
from services.twilio_sandbox.webhooks import WEBHOOKS, inbound_form
from shared import logging

log = logging.get("twilio_sandbox")


def bad(detail: str, status: int = 400) -> web.Response:
    return web.json_response({"error": detail}, status=status)


async def json_object(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "the body is not JSON"}', content_type="application/json") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text='{"error": "the body is not a JSON object"}', content_type="application/json")
    return data


def behaviour_of(data: dict[str, Any]) -> Behaviour:
    """A Behaviour from the JSON a test sent, or ValueError saying what is wrong with it."""
    mode, status, delay = data.get("mode", "ok"), data.get("status", 500), data.get("delay", 0)
    count, delivery = data.get("count"), data.get("delivery", "delivered")
    queued_for, smart_encoding = data.get("queued_for", 0), data.get("smart_encoding", False)
    if mode not in ("ok", "error", "slow"):
        raise ValueError("mode must be ok, error or slow")
    if mode == "error" and status not in STATUS_CODES:
        raise ValueError(f"status must be one of {sorted(STATUS_CODES)}")
    if not isinstance(delay, int | float) or delay < 0:
        raise ValueError("delay must be a number of seconds, at least 0")
    if count is not None and (not isinstance(count, int) or count < 1):
        raise ValueError("count must be a positive integer (omit it: until reset)")
    if delivery not in ("delivered", "undelivered", "failed"):
        raise ValueError("delivery must be delivered, undelivered or failed")
    if isinstance(queued_for, bool) or not isinstance(queued_for, int | float) or not 0 <= queued_for <= 3600:
        raise ValueError("queued_for must be a number of seconds, 0 to 3600")
    if not isinstance(smart_encoding, bool):
        raise ValueError("smart_encoding must be true or false")
    return Behaviour(
        mode=mode,
        status=status,
        delay=float(delay),
        count=count,
        delivery=delivery,
        queued_for=float(queued_for),
        smart_encoding=smart_encoding,
    )


async def set_behaviour(request: web.Request) -> web.Response:
    try:
        behaviour = behaviour_of(await json_object(request))
    except ValueError as exc:
        return bad(str(exc))
    request.app[SANDBOX].behaviour = behaviour
    log.info("sandbox.behaviour", **behaviour.public())
    return web.json_response(behaviour.public())


async def reset(request: web.Request) -> web.Response:
    await request.app[WEBHOOKS].cancel_pending()
    request.app[SANDBOX].reset()
    return web.json_response({"reset": True})


async def messages(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    return web.json_response({"calls": sandbox.calls, "messages": [m.resource() for m in sandbox.messages.values()]})


async def inbound(request: web.Request) -> web.Response:
    data = await json_object(request)
    sandbox = request.app[SANDBOX]
    if "url" in data:  # a URL from the request would make the sandbox a signer of forged webhooks for anyone
        return bad('the inbound webhook goes to SANDBOX_INBOUND_URL only: "url" is not taken')
    url = sandbox.inbound_url
    if not url:
        return bad("no inbound URL: set SANDBOX_INBOUND_URL", 409)
    if not all(isinstance(data.get(k), str) and data[k] for k in ("from", "to", "body")):
        return bad('"from", "to" and "body" are required strings')
    form = inbound_form(sandbox.account_sid, data["from"], data["to"], data["body"])
    try:
        status = await request.app[WEBHOOKS].post(url, form)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return bad(f"the inbound webhook {url} could not be reached: {exc!r}", 502)
    log.info("sandbox.inbound_posted", sid=form["MessageSid"], url=url, answer=status)
    return web.json_response({"status": status, "sid": form["MessageSid"]})


def setup(app: web.Application) -> None:
    app.router.add_post("/_sandbox/behaviour", set_behaviour)
    app.router.add_post("/_sandbox/reset", reset)
    app.router.add_get("/_sandbox/messages", messages)
    app.router.add_post("/_sandbox/inbound", inbound)
