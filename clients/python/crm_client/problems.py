"""The refusals of the server's table (shared/problems.py), one class each, generated from it
by `make client`: do not edit by hand.

A problem answer whose type is in `BY_TYPE` is raised as its class (crm_client/http.py); another is
raised as the class of its status (crm_client/errors.py). Each class here is also what the client
raised for it before it had one (by status), so the `except` clauses written then still catch it:
`except Conflict` catches a `ForbiddenMove`, `except Unreachable` an `Unavailable` (retried first).
`except Rejected` catches every problem answer.
"""

from crm_client import errors
from crm_client.errors import Rejected


class Invalid(errors.Invalid):
    """Input the contract let through but the rules or the database cannot take."""

    status = 422
    title = "Invalid request"
    type = "/problems/validation"


class InvalidMessage(Invalid):
    """A message whose properties or headers cannot be read (a header of the wrong type, out of range, too long,
    not UTF-8 text...): answered when it names a reply_to, and acked; never left unacknowledged."""

    status = 422
    title = "Invalid message"
    type = "/problems/invalid"


class KeyReused(errors.Invalid):
    """A known message id with another body: refused, and (unlike other refusals) not stored."""

    status = 422
    title = "Idempotency key reused"
    type = "/problems/idempotency-key-reused"


class NotFound(errors.NotFound):
    """Unknown, or another organisation's (which answers exactly like unknown)."""

    status = 404
    title = "Not found"
    type = "/problems/not-found"


class Forbidden(errors.Unauthorized):
    """A broker user acting for an organisation it may not act for (shared/identity.py), or sending a command
    only the platform may send (`Command.INTERNAL`)."""

    status = 403
    title = "Forbidden"
    type = "/problems/forbidden"


class AlreadyExists(errors.Conflict):
    """Already exists."""

    status = 409
    title = "Already exists"
    type = "/problems/conflict"


class ForbiddenMove(errors.Conflict):
    """Status change not allowed."""

    status = 409
    title = "Status change not allowed"
    type = "/problems/forbidden-status-change"


class StatusConflict(errors.Conflict):
    """The caller's expected status is not the current one."""

    status = 409
    title = "Status changed meanwhile"
    type = "/problems/status-conflict"


class BulkRefused(errors.Conflict):
    """Bulk status change refused."""

    status = 409
    title = "Bulk status change refused"
    type = "/problems/bulk-refused"


class NotScheduled(errors.Conflict):
    """Confirming an appointment that is not scheduled."""

    status = 409
    title = "Appointment cannot be confirmed"
    type = "/problems/appointment-not-scheduled"


class AlreadyStarted(errors.Conflict):
    """Appointment already started."""

    status = 409
    title = "Appointment already started"
    type = "/problems/appointment-in-the-past"


class AppointmentClosed(errors.Conflict):
    """Changing an appointment that is cancelled, completed or a no-show."""

    status = 409
    title = "Appointment closed"
    type = "/problems/appointment-closed"


class NotStarted(errors.Conflict):
    """Marking completed (or no-show) an appointment whose time has not come."""

    status = 409
    title = "Appointment not started yet"
    type = "/problems/appointment-not-started"


class OptedOut(errors.Conflict):
    """Lead opted out."""

    status = 409
    title = "Lead opted out"
    type = "/problems/opted-out"


class ProviderRefused(errors.Invalid):
    """SMS refused by the provider."""

    status = 422
    title = "SMS refused by the provider"
    type = "/problems/sms-refused"


class CampaignClosed(errors.Conflict):
    """Starting, pausing or resuming a campaign that is completed or cancelled (or cancelling a completed one)."""

    status = 409
    title = "Campaign closed"
    type = "/problems/campaign-closed"


class CampaignNotStarted(errors.Conflict):
    """Pausing or resuming a campaign that was never started."""

    status = 409
    title = "Campaign not started"
    type = "/problems/campaign-not-started"


class ProposalNotOpen(errors.Conflict):
    """Accepting or declining a proposal that is no longer sent (accepted, declined)."""

    status = 409
    title = "Proposal not open"
    type = "/problems/proposal-not-open"


class ProposalExpired(errors.Conflict):
    """Proposal expired."""

    status = 409
    title = "Proposal expired"
    type = "/problems/proposal-expired"


class ProposalNotAccepted(errors.Conflict):
    """Paying, or making a contract, against a proposal that was not accepted."""

    status = 409
    title = "Proposal not accepted"
    type = "/problems/proposal-not-accepted"


class CurrencyMismatch(errors.Invalid):
    """Currency mismatch."""

    status = 422
    title = "Currency mismatch"
    type = "/problems/currency-mismatch"


class Overpayment(errors.Conflict):
    """Payment exceeds the balance."""

    status = 409
    title = "Payment exceeds the balance"
    type = "/problems/overpayment"


class ReferenceReused(errors.Conflict):
    """An external reference already recorded for another payment (other amount, proposal...)."""

    status = 409
    title = "External reference reused"
    type = "/problems/reference-reused"


class RefundTooLarge(errors.Conflict):
    """Refund exceeds what was paid."""

    status = 409
    title = "Refund exceeds what was paid"
    type = "/problems/refund-too-large"


class ContractClosed(errors.Conflict):
    """Changing a contract that is signed (never changes) or void."""

    status = 409
    title = "Contract closed"
    type = "/problems/contract-closed"


class MalformedJson(errors.Invalid):
    """A body that is not JSON, or not a JSON object."""

    status = 400
    title = "Malformed JSON"
    type = "/problems/malformed-json"


class InvalidIdempotencyKey(errors.Invalid):
    """Invalid Idempotency-Key."""

    status = 400
    title = "Invalid Idempotency-Key"
    type = "/problems/idempotency-key"


class Unauthorized(errors.Unauthorized):
    """Unauthorized."""

    status = 401
    title = "Unauthorized"
    type = "/problems/unauthorized"


class BadSignature(errors.Unauthorized):
    """A webhook whose X-Twilio-Signature does not match it."""

    status = 403
    title = "Forbidden"
    type = "/problems/signature"


class OriginRefused(errors.Unauthorized):
    """A websocket opened from an origin that is not allowed."""

    status = 403
    title = "Forbidden"
    type = "/problems/origin"


class MalformedForm(errors.Invalid):
    """Malformed form."""

    status = 400
    title = "Malformed form"
    type = "/problems/malformed-form"


class BadWebhook(errors.Invalid):
    """A webhook form that lacks the fields it must carry."""

    status = 400
    title = "Bad webhook"
    type = "/problems/bad-webhook"


class MalformedMultipart(errors.Invalid):
    """Malformed multipart body."""

    status = 400
    title = "Malformed multipart body"
    type = "/problems/malformed-multipart"


class TooLarge(errors.Refused):
    """A file, or a webhook's form, over its limit (the detail says which, and the limit)."""

    status = 413
    title = "Too large"
    type = "/problems/too-large"


class UnsupportedMediaType(errors.Refused):
    """Unsupported media type."""

    status = 415
    title = "Unsupported media type"
    type = "/problems/unsupported-media-type"


class ContentTypeMismatch(errors.Refused):
    """A file whose bytes say another type than its Content-Type."""

    status = 415
    title = "Content type contradicts the file"
    type = "/problems/content-type-mismatch"


class UnsupportedEncoding(errors.Refused):
    """Unsupported encoding."""

    status = 415
    title = "Unsupported encoding"
    type = "/problems/unsupported-encoding"


class RangeNotSatisfiable(errors.Refused):
    """Range not satisfiable."""

    status = 416
    title = "Range not satisfiable"
    type = "/problems/range-not-satisfiable"


class ContentMissing(errors.ServerError):
    """A document whose stored content cannot be found (logged: an operator's matter)."""

    status = 500
    title = "Content missing"
    type = "/problems/content-missing"


class Unavailable(errors.Rejected, errors.Unreachable):
    """Transient: the broker did not confirm, a service did not answer in time. Try again."""

    status = 503
    title = "Service unavailable"
    type = "/problems/unavailable"


class CommandParked(errors.ServerError):
    """A command that failed all its attempts and waits for an operator (`make parked`)."""

    status = 503
    title = "Command parked"
    type = "/problems/command-parked"


# A problem type back to its class: the first (most general) of a type, as the server's BY_TYPE.
BY_TYPE: dict[str, type[Rejected]] = {
    "/problems/validation": Invalid,
    "/problems/invalid": InvalidMessage,
    "/problems/idempotency-key-reused": KeyReused,
    "/problems/not-found": NotFound,
    "/problems/forbidden": Forbidden,
    "/problems/conflict": AlreadyExists,
    "/problems/forbidden-status-change": ForbiddenMove,
    "/problems/status-conflict": StatusConflict,
    "/problems/bulk-refused": BulkRefused,
    "/problems/appointment-not-scheduled": NotScheduled,
    "/problems/appointment-in-the-past": AlreadyStarted,
    "/problems/appointment-closed": AppointmentClosed,
    "/problems/appointment-not-started": NotStarted,
    "/problems/opted-out": OptedOut,
    "/problems/sms-refused": ProviderRefused,
    "/problems/campaign-closed": CampaignClosed,
    "/problems/campaign-not-started": CampaignNotStarted,
    "/problems/proposal-not-open": ProposalNotOpen,
    "/problems/proposal-expired": ProposalExpired,
    "/problems/proposal-not-accepted": ProposalNotAccepted,
    "/problems/currency-mismatch": CurrencyMismatch,
    "/problems/overpayment": Overpayment,
    "/problems/reference-reused": ReferenceReused,
    "/problems/refund-too-large": RefundTooLarge,
    "/problems/contract-closed": ContractClosed,
    "/problems/malformed-json": MalformedJson,
    "/problems/idempotency-key": InvalidIdempotencyKey,
    "/problems/unauthorized": Unauthorized,
    "/problems/signature": BadSignature,
    "/problems/origin": OriginRefused,
    "/problems/malformed-form": MalformedForm,
    "/problems/bad-webhook": BadWebhook,
    "/problems/malformed-multipart": MalformedMultipart,
    "/problems/too-large": TooLarge,
    "/problems/unsupported-media-type": UnsupportedMediaType,
    "/problems/content-type-mismatch": ContentTypeMismatch,
    "/problems/unsupported-encoding": UnsupportedEncoding,
    "/problems/range-not-satisfiable": RangeNotSatisfiable,
    "/problems/content-missing": ContentMissing,
    "/problems/unavailable": Unavailable,
    "/problems/command-parked": CommandParked,
}
