"""Expected refusals, by name, and the one table that says how each is answered.

A domain module raises a named refusal (`ForbiddenMove(detail, currentStatus=...)`);
it knows nothing of HTTP. `PROBLEMS` maps each to its status, title and problem
type (RFC 9457); the pipeline answers with that body, stores it in the inbox like
any answer, and never retries it (shared.retry). The gateway passes the body on.
"""
from typing import Any

from shared.contracts.envelope import Reply, problem


class Rejected(Exception):
    """Base of every expected, permanent refusal. `extra` fields ride along in the problem body."""

    def __init__(self, detail: str, **extra: Any):
        super().__init__(detail)
        status, title, type_ = PROBLEMS[type(self)]
        self.body = problem(status, title, detail, type_, **extra)

    @property
    def status(self) -> int:
        return self.body["status"]

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
}


def not_found(what: str, ident: str) -> NotFound:
    return NotFound(f"{what} {ident} does not exist")


def invalid(detail: str, errors: list[dict[str, Any]] | None = None) -> Invalid:
    return Invalid(detail, errors)
