"""Twilio's Messages API (2010-04-01): create, list, fetch; same paths, form fields, answers and error codes.

Twilio's documented test numbers answer as with Twilio's test credentials:
To +15005550001 invalid (21211), +15005550002 unroutable (21612), +15005550003
no permission for the region (21408), +15005550004 unsubscribed (21610),
+15005550009 not a mobile (21614); From +15005550001 invalid (21212),
+15005550007 not yours (21606), +15005550008 queue full (21611).
"""

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aiohttp import web
from multidict import MultiMapping
from yarl import URL

from services.sms.segments import segments
from services.sms.smart_encoding import smart_encoded
from services.twilio_sandbox.state import API_VERSION, SANDBOX, Message, twilio_error
from services.twilio_sandbox.webhooks import WEBHOOKS
from shared import logging

log = logging.get("twilio_sandbox")
E164 = re.compile(r"\+[1-9]\d{6,14}")
URL_PATTERN = re.compile(r"https?://[^\s/]+\S*")
MAX_BODY = 1600
TEST_TO = {
    "+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550002": (
        21612,
        "The 'To' phone number: +15005550002, is not currently reachable using the 'From' phone number via SMS.",
    ),
    "+15005550003": (
        21408,
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: +15005550003.",
    ),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}
TEST_FROM = {
    "+15005550001": (
        21212,
        "The 'From' number +15005550001 is not a valid phone number, shortcode, or alphanumeric sender ID.",
    ),
    "+15005550007": (
        21606,
        "The From phone number +15005550007 is not a valid, SMS-capable inbound phone number "
        "or short code for your account.",
    ),
    "+15005550008": (21611, "This 'From' number has exceeded the maximum number of queued messages"),
}


def refused(status: int, code: int, message: str) -> web.Response:
    return web.json_response(twilio_error(status, code, message), status=status)


def refusal(to: str, from_: str, service: str, body: str, callback: str) -> tuple[int, str] | None:
    """The error code and message Twilio gives these fields, or None when it would accept them."""
    if not to:
        return 21604, "A 'To' phone number is required."
    if not from_ and not service:
        return 21603, "A 'From' phone number is required."
    if not body:
        return 21602, "Message body is required."
    if len(body) > MAX_BODY:
        return 21617, "The concatenated message body exceeds the 1600 character limit."
    if callback and not URL_PATTERN.fullmatch(callback):
        return 21609, f"The StatusCallback URL {callback} is not a valid URL."
    if to in TEST_TO:
        return TEST_TO[to]
    if not E164.fullmatch(to):
        return 21211, f"The 'To' number {to} is not a valid phone number."
    return TEST_FROM.get(from_)


async def create(request: web.Request) -> web.Response:
    form = await request.post()
    names = ("To", "From", "MessagingServiceSid", "Body", "StatusCallback")
    to, from_, service, body, callback = (str(form.get(name, "")).strip() for name in names)
    problem = refusal(to, from_, service, body, callback)
    if problem:
        log.info("sandbox.message_refused", to=to, code=problem[0])
        return refused(400, *problem)
    sandbox = request.app[SANDBOX]
    behaviour = sandbox.behaviour
    body = stored_body(body, form.get("SmartEncoded"), behaviour.smart_encoding)
    # Through a Messaging Service Twilio picks the sender later: the message is "accepted", not yet "queued".
    message = sandbox.accept(
        Message(
            account_sid=sandbox.account_sid,
            to=to,
            from_=from_ or None,
            messaging_service_sid=service or None,
            body=body,
            segments=segments(body)[1],
            status="queued" if from_ else "accepted",
            status_callback=callback or None,
        )
    )
    if not behaviour.queued_for:
        message.sent = message.created
    request.app[WEBHOOKS].follow(message, behaviour.delivery, behaviour.queued_for)
    log.info("sandbox.message_accepted", sid=message.sid, to=to, segments=message.segments)
    return web.json_response(message.resource(), status=201)


def stored_body(body: str, requested: object, by_default: bool) -> str:
    """The body as Twilio keeps (and lists) it: rewritten by Smart Encoding when that is on for this send
    (the `SmartEncoded` field, else the sandbox's `smart_encoding`, standing for a Messaging Service's setting)."""
    smart = by_default if requested is None else str(requested).strip().lower() == "true"
    return smart_encoded(body) if smart else body


async def fetch(request: web.Request) -> web.Response:
    message = request.app[SANDBOX].messages.get(request.match_info["sid"])
    if message is None:
        return refused(404, 20404, f"The requested resource {request.path} was not found")
    return web.json_response(message.resource())


async def list_(request: web.Request) -> web.Response:
    query = request.query
    try:
        keep = filters(query)
        size, page = int(query.get("PageSize", 50)), int(query.get("Page", 0))
        if not (1 <= size <= 1000 and page >= 0):
            raise ValueError("PageSize must be 1-1000 and Page at least 0")
    except ValueError as exc:
        return refused(400, 20001, f"Invalid parameter: {exc}")
    # Newest first, as Twilio lists them.
    found = [m for m in reversed(request.app[SANDBOX].messages.values()) if all(f(m) for f in keep)]
    start = page * size
    records = found[start : start + size]
    base = {k: v for k, v in query.items() if k not in ("Page", "PageToken", "PageSize")}

    def uri(number: int) -> str:
        return str(URL(request.path).with_query({**base, "PageSize": size, "Page": number}))

    return web.json_response(
        {
            "messages": [m.resource() for m in records],
            "page": page,
            "page_size": size,
            "first_page_uri": uri(0),
            "uri": uri(page),
            "next_page_uri": uri(page + 1) if start + size < len(found) else None,
            "previous_page_uri": uri(page - 1) if page > 0 else None,
            "start": start,
            "end": start + max(len(records) - 1, 0),
        }
    )


Filter = Callable[[Message], bool]


def filters(query: MultiMapping[str]) -> list[Filter]:
    """Twilio's list filters. The twilio client sends `DateSent>` / `DateSent<` (which read `DateSent>=` / `DateSent<=`
    on the wire) with `YYYY-MM-DDTHH:MM:SSZ`; Twilio documents `YYYY-MM-DD`. Both bounds include their day or second.
    A date filter never lists a message still queued: it has no date_sent yet."""
    keep: list[Filter] = []
    if "To" in query:
        to = query["To"]
        keep.append(lambda m: m.to == to)
    if "From" in query:
        from_ = query["From"]
        keep.append(lambda m: m.from_ == from_)
    for name, value in query.items():
        if name == "DateSent":
            keep.append(_sent_within(*moment(value)))
        elif name in ("DateSent>", "DateSent>="):
            keep.append(_sent_since(moment(value)[0]))
        elif name in ("DateSent<", "DateSent<="):
            keep.append(_sent_before(moment(value)[1]))
    return keep


# One function per filter, each closing over its own bounds (the loop above may add several of a kind).
def _sent_within(low: datetime, high: datetime) -> Filter:
    return lambda m: m.sent is not None and low <= m.sent < high


def _sent_since(low: datetime) -> Filter:
    return lambda m: m.sent is not None and m.sent.replace(microsecond=0) >= low


def _sent_before(high: datetime) -> Filter:
    return lambda m: m.sent is not None and m.sent < high


def moment(value: str) -> tuple[datetime, datetime]:
    """The span a date filter value names: a whole day for YYYY-MM-DD, one second for a date and time."""
    for form, span in (("%Y-%m-%dT%H:%M:%SZ", timedelta(seconds=1)), ("%Y-%m-%d", timedelta(days=1))):
        try:
            start = datetime.strptime(value, form).replace(tzinfo=UTC)
        except ValueError:
            continue
        return start, start + span
    raise ValueError(f"DateSent {value!r} is not YYYY-MM-DD nor YYYY-MM-DDTHH:MM:SSZ")


def setup(app: web.Application) -> None:
    prefix = f"/{API_VERSION}/Accounts/{{account_sid}}"
    app.router.add_post(f"{prefix}/Messages.json", create)
    app.router.add_get(f"{prefix}/Messages.json", list_)
    app.router.add_get(f"{prefix}/Messages/{{sid}}.json", fetch)
