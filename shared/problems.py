"""Every refusal the system gives, by name, and the one table that says how each is answered.

A domain module raises a named refusal (`ForbiddenMove(detail, currentStatus=...)`);
it knows nothing of HTTP. `PROBLEMS` maps each to its status, title and problem
type (RFC 9457); the pipeline answers with that body, stores it in the inbox like
any answer, and never retries it (shared.retry). The gateway passes the body on,
and raises the HTTP edge's own refusals (malformed JSON, a bad signature...) the
same way: its middleware answers any `Rejected` with its body and headers.

`BY_TYPE` turns a problem type back into its class (the SMS campaigns judge a
refused send by it; the Python client's exceptions are generated from the table).
`CLOSES` is the websocket's table: each close code, and what it tells the client.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import ValidationError

from shared.contracts.envelope import Reply, problem


class Rejected(Exception):
    """Base of every expected, permanent refusal. `extra` fields ride along in the problem body;
    `headers` go with it when it leaves over HTTP (Retry-After, WWW-Authenticate)."""

    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, detail: str, **extra: Any):
        super().__init__(detail)
        status, title, type_ = PROBLEMS[type(self)]
        self.body = problem(status, title, detail, type_, **extra)

    @property
    def status(self) -> int:
        return int(self.body["status"])

    @property
    def type(self) -> str:
        return str(self.body["type"])

    def reply(self) -> Reply:
        return Reply(status=self.status, body=self.body)


# Any button ------------------------------------------------------------------------
class Invalid(Rejected):
    """Input the contract let through but the rules or the database cannot take."""

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None, **extra: Any):
        super().__init__(detail, errors=errors or [], **extra)


class InvalidMessage(Invalid):
    """A message whose properties or headers cannot be read (a header of the wrong type, out of range, too long,
    not UTF-8 text...): answered when it names a reply_to, and acked; never left unacknowledged."""


class KeyReused(Rejected):
    """A known message id with another body: refused, and (unlike other refusals) not stored."""

    def __init__(self, message_id: str):
        super().__init__(f"message id {message_id} was already used with a different body; nothing was changed")


class Forbidden(Rejected):
    """A broker user acting for an organisation it may not act for (shared/identity.py), or sending a command
    only the platform may send (`Command.INTERNAL`)."""


class NotFound(Rejected):
    """Unknown, or another organisation's (which answers exactly like unknown)."""


class AlreadyExists(Rejected):
    pass


# Leads -------------------------------------------------------------------------------
class ForbiddenMove(Rejected):
    pass


class StatusConflict(Rejected):
    """The caller's expected status is not the current one."""


class BulkRefused(Rejected):
    pass


# Appointments ------------------------------------------------------------------------
class NotScheduled(Rejected):
    """Confirming an appointment that is not scheduled."""


class AlreadyStarted(Rejected):
    pass


class AppointmentClosed(Rejected):
    """Changing an appointment that is cancelled, completed or a no-show."""


class NotStarted(Rejected):
    """Marking completed (or no-show) an appointment whose time has not come."""


# SMS ---------------------------------------------------------------------------------
class OptedOut(Rejected):
    pass


class ProviderRefused(Rejected):
    pass


class CampaignClosed(Rejected):
    """Starting, pausing or resuming a campaign that is completed or cancelled (or cancelling a completed one)."""


class CampaignNotStarted(Rejected):
    """Pausing or resuming a campaign that was never started."""


# Proposals, payments, contracts ------------------------------------------------------
class ProposalNotOpen(Rejected):
    """Accepting or declining a proposal that is no longer sent (accepted, declined)."""


class ProposalExpired(Rejected):
    pass


class ProposalNotAccepted(Rejected):
    """Paying, or making a contract, against a proposal that was not accepted."""


class CurrencyMismatch(Rejected):
    pass


class Overpayment(Rejected):
    pass


class ReferenceReused(Rejected):
    """An external reference already recorded for another payment (other amount, proposal...)."""


class RefundTooLarge(Rejected):
    pass


class ContractClosed(Rejected):
    """Changing a contract that is signed (never changes) or void."""


# The HTTP edge (services/gateway) ---------------------------------------------------
class MalformedJson(Rejected):
    """A body that is not JSON, or not a JSON object."""


class InvalidIdempotencyKey(Rejected):
    pass


class Unauthorized(Rejected):
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}


class BadSignature(Rejected):
    """A webhook whose X-Twilio-Signature does not match it."""


class OriginRefused(Rejected):
    """A websocket opened from an origin that is not allowed."""


class MalformedForm(Rejected):
    pass


class BadWebhook(Rejected):
    """A webhook form that lacks the fields it must carry."""


class MalformedMultipart(Rejected):
    pass


class TooLarge(Rejected):
    """A file, or a webhook's form, over its limit (the detail says which, and the limit)."""


class UnsupportedMediaType(Rejected):
    pass


class ContentTypeMismatch(Rejected):
    """A file whose bytes say another type than its Content-Type."""


class UnsupportedEncoding(Rejected):
    pass


class RangeNotSatisfiable(Rejected):
    pass


class ContentMissing(Rejected):
    """A document whose stored content cannot be found (logged: an operator's matter)."""


class Unavailable(Rejected):
    """Transient: the broker did not confirm, a service did not answer in time. Try again."""

    headers: ClassVar[dict[str, str]] = {"Retry-After": "1"}


class CommandParked(Rejected):
    """A command that failed all its attempts and waits for an operator (`make parked`)."""


# The one table: refusal -> (status, title, problem type).
PROBLEMS: dict[type[Rejected], tuple[int, str, str]] = {
    Invalid: (422, "Invalid request", "/problems/validation"),
    InvalidMessage: (422, "Invalid message", "/problems/invalid"),
    KeyReused: (422, "Idempotency key reused", "/problems/idempotency-key-reused"),
    NotFound: (404, "Not found", "/problems/not-found"),
    Forbidden: (403, "Forbidden", "/problems/forbidden"),
    AlreadyExists: (409, "Already exists", "/problems/conflict"),
    ForbiddenMove: (409, "Status change not allowed", "/problems/forbidden-status-change"),
    StatusConflict: (409, "Status changed meanwhile", "/problems/status-conflict"),
    BulkRefused: (409, "Bulk status change refused", "/problems/bulk-refused"),
    NotScheduled: (409, "Appointment cannot be confirmed", "/problems/appointment-not-scheduled"),
    AlreadyStarted: (409, "Appointment already started", "/problems/appointment-in-the-past"),
    AppointmentClosed: (409, "Appointment closed", "/problems/appointment-closed"),
    NotStarted: (409, "Appointment not started yet", "/problems/appointment-not-started"),
    OptedOut: (409, "Lead opted out", "/problems/opted-out"),
    ProviderRefused: (422, "SMS refused by the provider", "/problems/sms-refused"),
    CampaignClosed: (409, "Campaign closed", "/problems/campaign-closed"),
    CampaignNotStarted: (409, "Campaign not started", "/problems/campaign-not-started"),
    ProposalNotOpen: (409, "Proposal not open", "/problems/proposal-not-open"),
    ProposalExpired: (409, "Proposal expired", "/problems/proposal-expired"),
    ProposalNotAccepted: (409, "Proposal not accepted", "/problems/proposal-not-accepted"),
    CurrencyMismatch: (422, "Currency mismatch", "/problems/currency-mismatch"),
    Overpayment: (409, "Payment exceeds the balance", "/problems/overpayment"),
    ReferenceReused: (409, "External reference reused", "/problems/reference-reused"),
    RefundTooLarge: (409, "Refund exceeds what was paid", "/problems/refund-too-large"),
    ContractClosed: (409, "Contract closed", "/problems/contract-closed"),
    MalformedJson: (400, "Malformed JSON", "/problems/malformed-json"),
    InvalidIdempotencyKey: (400, "Invalid Idempotency-Key", "/problems/idempotency-key"),
    Unauthorized: (401, "Unauthorized", "/problems/unauthorized"),
    BadSignature: (403, "Forbidden", "/problems/signature"),
    OriginRefused: (403, "Forbidden", "/problems/origin"),
    MalformedForm: (400, "Malformed form", "/problems/malformed-form"),
    BadWebhook: (400, "Bad webhook", "/problems/bad-webhook"),
    MalformedMultipart: (400, "Malformed multipart body", "/problems/malformed-multipart"),
    TooLarge: (413, "Too large", "/problems/too-large"),  # one title per type (RFC 9457): was "File/Form too large"
    UnsupportedMediaType: (415, "Unsupported media type", "/problems/unsupported-media-type"),
    ContentTypeMismatch: (415, "Content type contradicts the file", "/problems/content-type-mismatch"),
    UnsupportedEncoding: (415, "Unsupported encoding", "/problems/unsupported-encoding"),
    RangeNotSatisfiable: (416, "Range not satisfiable", "/problems/range-not-satisfiable"),
    ContentMissing: (500, "Content missing", "/problems/content-missing"),
    Unavailable: (503, "Service unavailable", "/problems/unavailable"),
    CommandParked: (503, "Command parked", "/problems/command-parked"),
}

# A problem type back to its class (one class per type: tests/unit/test_problems.py).
BY_TYPE: dict[str, type[Rejected]] = {}
for _refusal, _row in PROBLEMS.items():
    BY_TYPE.setdefault(_row[2], _refusal)


def is_refusal(body: Any, *kinds: type[Rejected]) -> bool:
    """Whether a problem body (a command's stored answer) is one of these refusals (or a subclass of one)."""
    known = BY_TYPE.get(str(body.get("type"))) if isinstance(body, dict) else None
    return known is not None and issubclass(known, kinds)


def http_error(status: int, title: str, detail: str) -> dict[str, Any]:
    """The body of an HTTP error the framework raised (no route: 404, a wrong method: 405, 500): RFC 9457's
    `about:blank` type, whose title is the status's own phrase. Not a refusal of ours, so not in the table."""
    return problem(status, title, detail)


def field_errors(exc: ValidationError, within: tuple[str, ...] = (), skip: int = 0) -> list[dict[str, Any]]:
    """A pydantic error as `[{field, message}]`, the list a 422 carries: each field's path dotted, under
    `within` (`data` for an event's data), its first `skip` parts left out (the body's own model name)."""
    return [{"field": ".".join((*within, *map(str, e["loc"][skip:]))), "message": e["msg"]} for e in exc.errors()]


def invalid_body(exc: ValidationError, detail: str) -> Invalid:
    """A pydantic error as the 422 that names each field."""
    return Invalid(detail, field_errors(exc))


@dataclass(frozen=True)
class Close:
    """A websocket close code and what the client is to do about it (docs/realtime.md)."""

    code: int
    name: str
    meaning: str


# The websocket's refusals, by close code (services/gateway/ws/ closes with these; the clients act on them).
CLOSES: dict[str, Close] = {
    c.name: c
    for c in (
        Close(4400, "bad_message", "a malformed message: the reason says what; do not retry it as it is"),
        Close(4401, "bad_token", "the token is missing, invalid or expired: sign in again"),
        Close(4403, "other_principal", "a token refresh for another user or organisation"),
        Close(4408, "hello_timeout", "no hello in time"),
        Close(1013, "try_again_later", "read too slowly, or too many replays: resume after a backoff"),
        Close(1011, "log_unavailable", "the event log is unavailable: resume in a moment"),
        Close(1001, "going_away", "the gateway is stopping: resume"),
    )
}


def not_found(what: str, ident: str) -> NotFound:
    return NotFound(f"{what} {ident} does not exist")


def invalid(detail: str, errors: list[dict[str, Any]] | None = None) -> Invalid:
    return Invalid(detail, errors)
