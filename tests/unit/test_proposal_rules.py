"""The rules of proposals, payments and contracts (services/proposals/domain.py), and the timeline's words."""

from datetime import UTC, datetime, timedelta

import pytest

from services.proposals import domain, timeline
from shared.contracts.proposals import (
    ContractSigned,
    ContractVoided,
    PaymentRecorded,
    ProposalSent,
)
from shared.contracts.proposals import ContractStatus as C
from shared.contracts.proposals import ProposalStatus as P
from shared.problems import PROBLEMS, Rejected

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
LATER, EARLIER = NOW + timedelta(days=7), NOW - timedelta(seconds=1)


def refused(call, *args) -> Rejected:  # type: ignore[no-untyped-def]
    with pytest.raises(Rejected) as caught:
        call(*args)
    return caught.value


def kind(problem: Rejected) -> str:
    return problem.body["type"]


# Proposals -------------------------------------------------------------------------
def test_valid_until_must_be_in_the_future() -> None:
    domain.check_valid_until(LATER, NOW)
    for when in (NOW, EARLIER):
        problem = refused(domain.check_valid_until, when, NOW)
        assert problem.status == 422 and problem.body["errors"][0]["field"] == "validUntil"


def test_accept_a_sent_proposal_once() -> None:
    assert domain.check_accept("p1", P.sent, LATER, NOW) is True
    assert domain.check_accept("p1", P.accepted, LATER, NOW) is False  # the same press again: nothing to do
    assert domain.check_accept("p1", P.accepted, EARLIER, NOW) is False  # accepted in time stays accepted


def test_an_expired_proposal_cannot_be_accepted() -> None:
    for until in (NOW, EARLIER):
        problem = refused(domain.check_accept, "p1", P.sent, until, NOW)
        assert (problem.status, kind(problem)) == (409, "/problems/proposal-expired")
        assert problem.body["validUntil"] == until.isoformat()


def test_a_declined_proposal_cannot_be_accepted_nor_an_accepted_one_declined() -> None:
    problem = refused(domain.check_accept, "p1", P.declined, LATER, NOW)
    assert (problem.status, kind(problem), problem.body["currentStatus"]) == (
        409,
        "/problems/proposal-not-open",
        "declined",
    )
    problem = refused(domain.check_decline, "p1", P.accepted)
    assert (kind(problem), problem.body["currentStatus"]) == ("/problems/proposal-not-open", "accepted")


def test_decline_a_sent_proposal_once() -> None:
    assert domain.check_decline("p1", P.sent) is True
    assert domain.check_decline("p1", P.declined) is False


# Money -----------------------------------------------------------------------------
def test_balance_is_integer_minor_units() -> None:
    assert domain.balance(150_000, 0) == 150_000
    assert domain.balance(150_000, 149_999) == 1
    assert domain.balance(10**13, 10**13 - 1) == 1  # no float rounding at the top of the range
    assert isinstance(domain.balance(10, 3), int)


def pay(
    status: P = P.accepted, currency: str = "USD", balance: int = 1000, amount: int = 400, paid_currency: str = "USD"
) -> None:
    domain.check_payment("p1", status, currency, balance, amount, paid_currency)


def test_a_payment_up_to_the_balance_is_taken() -> None:
    pay(amount=400)
    pay(amount=1000, balance=1000)  # the balance exactly


@pytest.mark.parametrize("status", [P.sent, P.declined])
def test_payments_only_against_an_accepted_proposal(status: P) -> None:
    problem = refused(pay, status)
    assert (problem.status, kind(problem), problem.body["currentStatus"]) == (
        409,
        "/problems/proposal-not-accepted",
        str(status),
    )


def test_a_payment_in_another_currency_is_refused() -> None:
    problem = refused(pay, P.accepted, "EUR")
    assert (problem.status, kind(problem), problem.body["expectedCurrency"]) == (
        422,
        "/problems/currency-mismatch",
        "EUR",
    )


def test_a_payment_above_the_balance_is_refused_naming_the_balance() -> None:
    problem = refused(pay, P.accepted, "USD", 1000, 1001)
    assert (problem.status, kind(problem), problem.body["balanceMinor"]) == (409, "/problems/overpayment", 1000)
    problem = refused(pay, P.accepted, "USD", 0, 1)  # fully paid
    assert problem.body["balanceMinor"] == 0


def test_the_same_reference_is_the_same_payment_only_with_the_same_terms() -> None:
    assert domain.is_same_payment("ref-1", "pay-1", ("p1", 500, "USD"), ("p1", 500, "USD")) is True
    for asked in (("p2", 500, "USD"), ("p1", 501, "USD"), ("p1", 500, "EUR")):
        problem = refused(domain.is_same_payment, "ref-1", "pay-1", ("p1", 500, "USD"), asked)
        assert (problem.status, kind(problem), problem.body["paymentId"]) == (
            409,
            "/problems/reference-reused",
            "pay-1",
        )


def test_a_refund_never_exceeds_what_is_left_of_the_payment() -> None:
    domain.check_refund("pay-1", 500, 500, 0)
    domain.check_refund("pay-1", 200, 500, 300)
    for amount, refunded in ((501, 0), (201, 300), (1, 500)):
        problem = refused(domain.check_refund, "pay-1", amount, 500, refunded)
        assert (problem.status, kind(problem), problem.body["refundableMinor"]) == (
            409,
            "/problems/refund-too-large",
            500 - refunded,
        )


# Contracts -------------------------------------------------------------------------
def test_a_contract_comes_from_an_accepted_proposal_one_open_at_a_time() -> None:
    domain.check_new_contract("p1", P.accepted, None)
    for status in (P.sent, P.declined):
        assert kind(refused(domain.check_new_contract, "p1", status, None)) == "/problems/proposal-not-accepted"
    problem = refused(domain.check_new_contract, "p1", P.accepted, "c1")
    assert (problem.status, kind(problem), problem.body["contractId"]) == (409, "/problems/conflict", "c1")


MOVES = {
    (C.draft, C.sent): True,
    (C.sent, C.sent): False,
    (C.draft, C.signed): True,
    (C.sent, C.signed): True,
    (C.draft, C.void): True,
    (C.sent, C.void): True,
    (C.void, C.void): False,
}


@pytest.mark.parametrize("status", list(C))
@pytest.mark.parametrize("target", [C.sent, C.signed, C.void])
def test_every_contract_move_follows_the_table(status: C, target: C) -> None:
    if (status, target) in MOVES:
        assert domain.check_contract_move("c1", status, target) is MOVES[status, target]
    else:  # a signed contract never changes (signing it again included); a void one is closed too
        problem = refused(domain.check_contract_move, "c1", status, target)
        assert (problem.status, kind(problem), problem.body["currentStatus"]) == (
            409,
            "/problems/contract-closed",
            str(status),
        )


def test_signed_at_may_not_be_in_the_future() -> None:
    domain.check_signed_at(EARLIER, NOW)
    domain.check_signed_at(NOW + timedelta(seconds=60), NOW)  # clock skew
    assert refused(domain.check_signed_at, NOW + timedelta(hours=1), NOW).status == 422


def test_every_refusal_has_its_row_in_the_problem_table() -> None:
    used = {
        domain.Invalid,
        domain.ProposalNotOpen,
        domain.ProposalExpired,
        domain.ProposalNotAccepted,
        domain.CurrencyMismatch,
        domain.Overpayment,
        domain.ReferenceReused,
        domain.RefundTooLarge,
        domain.AlreadyExists,
        domain.ContractClosed,
    }
    assert used <= set(PROBLEMS)


# The timeline's words --------------------------------------------------------------
@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (150_000, "USD", "1,500.00 USD"),
        (5, "EUR", "0.05 EUR"),
        (0, "USD", "0.00 USD"),
        (1500, "JPY", "1,500 JPY"),
        (1_234, "KWD", "1.234 KWD"),
        (10**13, "USD", "100,000,000,000.00 USD"),
        (-250, "USD", "-2.50 USD"),
    ],
)
def test_money_is_written_from_integers(minor: int, currency: str, text: str) -> None:
    assert timeline.money(minor, currency) == text


def test_summaries() -> None:
    sent = ProposalSent(
        proposalId="p1", leadId="l1", title="Website", amountMinor=150_000, currency="USD", validUntil=LATER, by="u"
    )
    assert timeline.proposal_sent(sent) == "Proposal “Website” sent: 1,500.00 USD, valid until 2030-01-08"
    assert timeline.proposal_declined("Website", None) == "Proposal “Website” declined"
    assert timeline.proposal_declined("Website", "too dear") == "Proposal “Website” declined: too dear"
    recorded = PaymentRecorded(
        paymentId="x",
        proposalId="p1",
        leadId="l1",
        amountMinor=50_000,
        currency="USD",
        method="card",
        externalReference="ch_1",
        balanceMinor=100_000,
        at=NOW,
        by="u",
    )
    assert timeline.payment_recorded(recorded) == (
        "Payment of 500.00 USD recorded (card, ref ch_1); balance 1,000.00 USD"
    )
    common = dict(contractId="c1", proposalId="p1", leadId="l1", at=NOW, by="u")
    assert timeline.contract_changed(ContractSigned(status=C.signed, signerName="Ada", **common), "Website") == (
        "Contract for “Website” signed by Ada"
    )
    assert timeline.contract_changed(ContractVoided(status=C.void, reason="typo", **common), "Website") == (
        "Contract for “Website” voided: typo"
    )
