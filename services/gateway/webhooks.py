"""Twilio's webhooks: status callbacks and inbound messages.

Not under /api and not JWT-authenticated: each request is checked with twilio's
`RequestValidator` against `X-Twilio-Signature` (the URL signed is PUBLIC_URL +
path); a bad or missing signature is 403 and nothing changes. Accepted ones
become commands for the SMS service, deduplicated there like any command: a
status callback on its `I-Twilio-Idempotency-Token`, an inbound message on its sid.
"""
import hashlib
import json
from uuid import uuid4

from aiohttp import web
from pydantic import BaseModel, ValidationError
from twilio.request_validator import RequestValidator

from services.gateway.bus import Bus, Unavailable
from services.gateway.errors import Problem, unavailable
from services.gateway.keys import BUS, SETTINGS
from shared import topology
from shared.contracts.sms import InboundSms, ProviderStatus

PROVIDER_ORG, PROVIDER_USER = "_provider", "twilio"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def signed_form(request: web.Request) -> dict[str, str]:
    settings = request.app[SETTINGS]
    try:
        form = await request.post()
    except (ValueError, UnicodeDecodeError):  # e.g. multipart/form-data without its boundary
        raise Problem(400, "Malformed form", "the body is not a readable form (Twilio posts "
                      "application/x-www-form-urlencoded)", "/problems/malformed-form") from None
    params = {k: v for k, v in form.items() if isinstance(v, str)}
    url = settings.public_url.rstrip("/") + request.path_qs
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not RequestValidator(settings.twilio_auth_token).validate(url, params, signature):
        raise Problem(403, "Forbidden", "the X-Twilio-Signature does not match this request", "/problems/signature")
    return params


async def forward(request: web.Request, routing_key: str, command: BaseModel, message_id: str) -> None:
    bus: Bus = request.app[BUS]
    try:
        await bus.call(topology.COMMANDS, routing_key, command.model_dump_json(by_alias=True).encode(),
                       message_id=message_id, correlation_id=uuid4().hex, org=PROVIDER_ORG, user=PROVIDER_USER,
                       wait=0, persistent=True)  # accepted once the broker confirmed it: Twilio need not wait
    except Unavailable as exc:
        raise unavailable(str(exc)) from None  # Twilio retries a failed webhook


def parse(model: type[BaseModel], data: dict[str, object]) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Problem(400, "Bad webhook", f"the webhook lacks fields: {exc.error_count()} error(s)",
                      "/problems/bad-webhook") from None


async def twilio_status(request: web.Request) -> web.Response:
    params = await signed_form(request)
    command = parse(ProviderStatus, {"sid": params.get("MessageSid"), "status": params.get("MessageStatus"),
                                     "errorCode": params.get("ErrorCode") or None})
    token = request.headers.get("I-Twilio-Idempotency-Token") or hashlib.sha256(
        json.dumps(params, sort_keys=True).encode()).hexdigest()
    await forward(request, "sms.provider_status", command, f"twilio-status:{token}")
    return web.Response(status=204)


async def twilio_inbound(request: web.Request) -> web.Response:
    params = await signed_form(request)
    command = parse(InboundSms, {"sid": params.get("MessageSid"), "from": params.get("From"),
                                 "to": params.get("To"), "body": params.get("Body", "")})
    await forward(request, "sms.inbound", command, f"twilio-inbound:{params['MessageSid']}")
    return web.Response(text=EMPTY_TWIML, content_type="text/xml")
