"""Twilio's webhooks: status callbacks and inbound messages.

Not under /api and not JWT-authenticated: each request is checked with twilio's
`RequestValidator` against `X-Twilio-Signature` (the URL signed is PUBLIC_URL +
path); a bad or missing signature is 403 and nothing changes. Accepted ones
become commands for the SMS service, deduplicated there like any command: a
status callback on its `I-Twilio-Idempotency-Token`, an inbound message on its sid.

    body ──not a form we can read (type, charset, bytes) ──► 400   ──larger than Twilio sends──► 413
         ──signature does not match ──► 403
         ──the broker confirmed the command ──► 204 / TwiML;  not confirmed in time ──► 503: Twilio retries

The body is read before the signature is checked: the signature is over the decoded
fields, so a body that cannot be decoded cannot be checked either.
"""

import codecs
import hashlib
import json
from urllib.parse import parse_qsl
from uuid import uuid4

from aiohttp import web
from pydantic import BaseModel, ValidationError
from twilio.request_validator import RequestValidator

from services.gateway.bus import Bus, Unavailable
from services.gateway.keys import BUS, SETTINGS
from shared import problems, topology
from shared.contracts.sms import InboundSms, ProviderStatus

PROVIDER_ORG, PROVIDER_USER = "_provider", "twilio"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
FORM = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 64 * 1024  # Twilio's largest (an inbound message, 1,600 characters and media URLs) is a few kB
# What a form may sensibly be posted in (codecs' names: utf8, us-ascii, latin-1... are these). Twilio posts UTF-8.
CHARSETS = {"utf-8", "ascii", "iso8859-1"}


async def signed_form(request: web.Request) -> dict[str, str]:
    settings = request.app[SETTINGS]
    params = await read_form(request)
    url = settings.public_url.rstrip("/") + request.path_qs
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not RequestValidator(settings.twilio_auth_token.get_secret_value()).validate(
        url, params, signature
    ):
        raise problems.BadSignature("the X-Twilio-Signature does not match this request")
    return params


async def read_form(request: web.Request) -> dict[str, str]:
    """The fields of the form posted, decoded in its declared charset (UTF-8 when none is declared).
    Not aiohttp's `request.post()`: an unknown charset makes it raise LookupError (a 500), and it
    accepts any size up to the application's limit and multipart bodies Twilio never sends."""
    if request.content_type != FORM:
        raise problems.MalformedForm(f"the body is {request.content_type[:80]}, not {FORM} (what Twilio posts)")
    charset = request.charset or "utf-8"
    try:
        codec = codecs.lookup(charset).name
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        codec = None
    if codec not in CHARSETS:
        raise problems.MalformedForm(
            f"the charset {charset[:40]!r} is not one a form is posted in (Twilio posts UTF-8)"
        )
    body = await _body(request)
    try:
        return dict(parse_qsl(body.decode(codec), keep_blank_values=True, encoding=codec, errors="strict"))
    except ValueError:  # UnicodeDecodeError among them: raw or percent-encoded bytes that are not in the charset
        raise problems.MalformedForm(f"the body is not a form written in {charset[:40]}") from None


async def _body(request: web.Request) -> bytes:
    too_large = problems.TooLarge(f"a webhook's form may hold at most {MAX_FORM_BYTES} bytes", maxBytes=MAX_FORM_BYTES)
    if (request.content_length or 0) > MAX_FORM_BYTES:
        raise too_large  # said before a byte is read
    body = b""
    while chunk := await request.content.read(MAX_FORM_BYTES + 1 - len(body)):  # chunked: no length to trust
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise too_large
    return body


async def forward(request: web.Request, routing_key: str, command: BaseModel, message_id: str) -> None:
    bus: Bus = request.app[BUS]
    try:
        await bus.call(
            topology.COMMANDS,
            routing_key,
            command.model_dump_json(by_alias=True).encode(),
            message_id=message_id,
            correlation_id=uuid4().hex,
            org=PROVIDER_ORG,
            user=PROVIDER_USER,
            wait=0,
            persistent=True,
        )  # answered once the broker confirmed it: Twilio need not wait
    except Unavailable as exc:  # unreachable, or no confirm in time: Twilio retries a 503, never a 204
        raise problems.Unavailable(str(exc)) from None


def parse(model: type[BaseModel], data: dict[str, object]) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise problems.BadWebhook(f"the webhook lacks fields: {exc.error_count()} error(s)") from None


async def twilio_status(request: web.Request) -> web.Response:
    params = await signed_form(request)
    command = parse(
        ProviderStatus,
        {
            "sid": params.get("MessageSid"),
            "status": params.get("MessageStatus"),
            "errorCode": params.get("ErrorCode") or None,
        },
    )
    token = (
        request.headers.get("I-Twilio-Idempotency-Token")
        or hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
    )
    await forward(request, "sms.provider_status", command, f"twilio-status:{token}")
    return web.Response(status=204)


async def twilio_inbound(request: web.Request) -> web.Response:
    params = await signed_form(request)
    command = parse(
        InboundSms,
        {
            "sid": params.get("MessageSid"),
            "from": params.get("From"),
            "to": params.get("To"),
            "body": params.get("Body", ""),
        },
    )
    await forward(request, "sms.inbound", command, f"twilio-inbound:{params['MessageSid']}")
    return web.Response(text=EMPTY_TWIML, content_type="text/xml")
