"""Proposal, payment and contract rules: pure functions, no I/O.

Money is an integer of minor units with its currency, never a float:
paid = payments - refunds, balance = amount - paid, and 0 <= paid <= amount always.
The checks return False when there is nothing to do (the same press again) and raise a
named refusal when the rules refuse.
"""

from datetime import datetime

from shared.contracts.proposals import ContractStatus as C
from shared.contracts.proposals import ProposalStatus as P
from shared.problems import (
    AlreadyExists,
    ContractClosed,
    CurrencyMismatch,
    Invalid,
    Overpayment,
    ProposalExpired,
    ProposalNotAccepted,
    ProposalNotOpen,
    ReferenceReused,
    RefundTooLarge,
)


# Proposals -------------------------------------------------------------------------
def check_valid_until(valid_until: datetime, now: datetime) -> None:
    if valid_until <= now:
        raise Invalid(
            f"validUntil {valid_until.isoformat()} is not in the future",
            [{"field": "validUntil", "message": "must be in the future"}],
        )


def check_accept(proposal_id: str, status: P, valid_until: datetime, now: datetime) -> bool:
    """True when the proposal must be accepted now, False when it already is."""
    if status == P.accepted:
        return False
    if status != P.sent:
        raise ProposalNotOpen(
            f"proposal {proposal_id} is {status}; only a sent proposal can be accepted", currentStatus=str(status)
        )
    if valid_until <= now:
        raise ProposalExpired(
            f"proposal {proposal_id} expired at {valid_until.isoformat()}; it can no longer be accepted",
            validUntil=valid_until.isoformat(),
        )
    return True


def check_decline(proposal_id: str, status: P) -> bool:
    """True when the proposal must be declined now, False when it already is. An expired proposal
    can still be declined (the contract asks only that it be sent)."""
    if status == P.declined:
        return False
    if status != P.sent:
        raise ProposalNotOpen(
            f"proposal {proposal_id} is {status}; only a sent proposal can be declined", currentStatus=str(status)
        )
    return True


# Payments --------------------------------------------------------------------------
def balance(amount_minor: int, paid_minor: int) -> int:
    return amount_minor - paid_minor


def is_same_payment(
    reference: str, payment_id: str, recorded: tuple[str, int, str], asked: tuple[str, int, str]
) -> bool:
    """A payment with this external reference exists: True when the command is that payment again
    ((proposal id, amount, currency) equal); refused when the reference is reused for another."""
    if recorded != asked:
        raise ReferenceReused(
            f"external reference {reference!r} is already payment {payment_id} of "
            f"{recorded[1]} {recorded[2]} against proposal {recorded[0]}",
            paymentId=payment_id,
        )
    return True


def check_payment(
    proposal_id: str, status: P, currency: str, balance_minor: int, amount_minor: int, paid_currency: str
) -> None:
    if status != P.accepted:
        raise ProposalNotAccepted(
            f"proposal {proposal_id} is {status}; payments are recorded against an accepted proposal only",
            currentStatus=str(status),
        )
    if paid_currency != currency:
        raise CurrencyMismatch(
            f"proposal {proposal_id} is in {currency}, the payment in {paid_currency}", expectedCurrency=currency
        )
    if amount_minor > balance_minor:
        raise Overpayment(
            f"a payment of {amount_minor} exceeds the balance of proposal {proposal_id} ({balance_minor} {currency})",
            balanceMinor=balance_minor,
        )


def check_refund(payment_id: str, amount_minor: int, paid_minor: int, refunded_minor: int) -> None:
    refundable = paid_minor - refunded_minor
    if amount_minor > refundable:
        raise RefundTooLarge(
            f"a refund of {amount_minor} exceeds what is left of payment {payment_id} ({refundable} of {paid_minor})",
            refundableMinor=refundable,
        )


# Contracts -------------------------------------------------------------------------
def check_new_contract(proposal_id: str, status: P, open_contract_id: str | None) -> None:
    if status != P.accepted:
        raise ProposalNotAccepted(
            f"proposal {proposal_id} is {status}; a contract is made from an accepted proposal only",
            currentStatus=str(status),
        )
    if open_contract_id is not None:
        raise AlreadyExists(
            f"proposal {proposal_id} already has contract {open_contract_id}; void it first",
            contractId=open_contract_id,
        )


# target -> the statuses it can be reached from. Signed and void are final.
CONTRACT_MOVES: dict[C, frozenset[C]] = {
    C.sent: frozenset({C.draft}),
    C.signed: frozenset({C.draft, C.sent}),
    C.void: frozenset({C.draft, C.sent}),
}


def check_contract_move(contract_id: str, status: C, target: C) -> bool:
    """True when the contract must move to `target` now, False when it is there already (send or
    void again). A signed contract never changes, signing it again included."""
    if status == target and status != C.signed:
        return False
    if status not in CONTRACT_MOVES[target]:
        raise ContractClosed(
            f"contract {contract_id} is {status}; it can no longer be {'voided' if target == C.void else target}",
            currentStatus=str(status),
        )
    return True


def check_signed_at(signed_at: datetime, now: datetime, skew_seconds: float = 300) -> None:
    if (signed_at - now).total_seconds() > skew_seconds:
        raise Invalid(
            f"signedAt {signed_at.isoformat()} is in the future",
            [{"field": "signedAt", "message": "must not be in the future"}],
        )
