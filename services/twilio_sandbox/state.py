"""What the sandbox remembers (in memory only): accepted messages, calls received, the behaviour tests asked for.

Messages are rendered exactly as Twilio's Message resource (API 2010-04-01),
errors exactly as Twilio's error bodies, so the official client parses both.
"""

import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Literal

from aiohttp import web

API_VERSION = "2010-04-01"
Mode = Literal["ok", "error", "slow"]
Delivery = Literal["delivered", "undelivered", "failed"]
# Twilio's error codes for the statuses a misbehaving front door answers.
STATUS_CODES = {
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    503: (20503, "Service Unavailable"),
    502: (20500, "Bad Gateway"),
    504: (20500, "Gateway Timeout"),
}
DELIVERY_ERRORS = {"undelivered": 30003, "failed": 30008}  # unreachable handset; unknown error


def twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    """An error body in Twilio's (legacy, non RFC 9457) shape: the client raises TwilioRestException for it."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def rfc2822(moment: datetime) -> str:
    """Twilio's date format, always in UTC (the client reads these dates as UTC whatever their offset)."""
    return format_datetime(moment.astimezone(UTC))


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass
class Message:
    account_sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    segments: int
    status_callback: str | None = None
    status: str = "queued"
    error_code: int | None = None
    sid: str = field(default_factory=lambda: new_sid("SM"))
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated: datetime | None = None
    # date_sent: null while the message waits in the queue, as at Twilio. The sandbox dates a message it
    # sends at once (no `queued_for`) from its creation, which keeps the DateSent filters exact.
    sent: datetime | None = None

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    @property
    def counted_segments(self) -> int:
        # Twilio counts segments once a sender is assigned: 0 while a Messaging Service message is "accepted".
        return 0 if self.status == "accepted" else self.segments

    def move(self, status: str, error_code: int | None = None) -> None:
        self.status, self.error_code, self.updated = status, error_code, datetime.now(UTC)
        if status == "sent" and self.sent is None:
            self.sent = self.updated

    def resource(self) -> dict[str, Any]:
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.created),
            "date_sent": rfc2822(self.sent) if self.sent else None,
            "date_updated": rfc2822(self.updated or self.created),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(self.counted_segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {
                "media": self.uri.removesuffix(".json") + "/Media.json",
                "feedback": self.uri.removesuffix(".json") + "/Feedback.json",
            },
            "to": self.to,
            "uri": self.uri,
        }


@dataclass(frozen=True)
class Behaviour:
    """How the Twilio API answers the next calls: `count` of them (None: until reset), then normally again."""

    mode: Mode = "ok"
    status: int = 500
    delay: float = 0.0
    count: int | None = None
    # How accepted messages go on; these outlive `count`:
    delivery: Delivery = "delivered"  # their last status callback
    queued_for: float = 0.0  # seconds they stay queued, date_sent null (unseen by DateSent filters), before sent
    smart_encoding: bool = False  # their body rewritten as Twilio's Smart Encoding does (unless SmartEncoded=false)

    def public(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "status": self.status,
            "delay": self.delay,
            "count": self.count,
            "delivery": self.delivery,
            "queued_for": self.queued_for,
            "smart_encoding": self.smart_encoding,
        }

    def settled(self) -> "Behaviour":
        """Answering normally again, accepted messages still treated as asked."""
        return Behaviour(delivery=self.delivery, queued_for=self.queued_for, smart_encoding=self.smart_encoding)


class Sandbox:
    def __init__(self, account_sid: str, auth_token: str, inbound_url: str | None = None):
        self.account_sid, self.auth_token, self.inbound_url = account_sid, auth_token, inbound_url
        self.reset()

    def reset(self) -> None:
        self.messages: dict[str, Message] = {}  # in acceptance order
        self.calls = 0  # POSTs to the Messages API, refused ones included
        self.behaviour = Behaviour()

    def take_misbehaviour(self) -> Behaviour | None:
        """The misbehaviour to apply to this call, if any; uses up one of its `count`."""
        current = self.behaviour
        if current.mode == "ok":
            return None
        if current.count is not None:
            left = current.count - 1
            self.behaviour = replace(current, count=left) if left > 0 else current.settled()
        return current

    def accept(self, message: Message) -> Message:
        self.messages[message.sid] = message
        return message


SANDBOX = web.AppKey("sandbox", Sandbox)
