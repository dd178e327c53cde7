"""Payment subscribers: record and refund, under the proposal's row lock.

Every payment or refund of a proposal takes its row lock first (`FOR UPDATE`), then reads the
balance: two payments arriving together are serialised, the second sees the first, and neither
can overpay. The same external reference is one payment: found again (same proposal, amount and
currency), it is answered with the payment it already is, and nothing happens twice.
"""

from datetime import UTC, datetime
from uuid import uuid4

import asyncpg

from services.proposals import domain, repository, timeline
from shared.contracts.proposals import (
    PaymentRecorded,
    PaymentRefunded,
    PaymentReply,
    PaymentView,
    ProposalView,
    RecordPayment,
    RefundPayment,
    RefundReply,
    RefundView,
)
from shared.messages import Meta, Outcome, ok
from shared.problems import not_found


async def record(conn: asyncpg.Connection, cmd: RecordPayment, meta: Meta) -> Outcome:
    proposal = await repository.proposal(conn, meta.org_id, cmd.proposalId, lock=True)
    if proposal is None:
        raise not_found("proposal", cmd.proposalId)
    known = await repository.payment_by_reference(conn, meta.org_id, cmd.externalReference)
    if known is not None and domain.is_same_payment(
        cmd.externalReference,
        known["id"],
        (known["proposal_id"], known["amount_minor"], known["currency"]),
        (proposal["id"], cmd.amountMinor, cmd.currency),
    ):
        return Outcome(ok(PaymentReply(payment=PaymentView(**known), proposal=ProposalView(**proposal)), 201))
    domain.check_payment(
        proposal["id"],
        proposal["status"],
        proposal["currency"],
        proposal["balance_minor"],
        cmd.amountMinor,
        cmd.currency,
    )
    now = datetime.now(UTC)
    payment = await repository.insert_payment(
        conn,
        uuid4(),
        meta.org_id,
        proposal["id"],
        cmd.amountMinor,
        cmd.currency,
        cmd.method,
        cmd.externalReference,
        now,
        meta.user_id,
    )
    proposal = present(await repository.proposal(conn, meta.org_id, proposal["id"]), "proposal", proposal["id"])
    recorded = PaymentRecorded(
        paymentId=payment["id"],
        proposalId=proposal["id"],
        leadId=proposal["lead_id"],
        amountMinor=payment["amount_minor"],
        currency=payment["currency"],
        method=payment["method"],
        externalReference=payment["external_reference"],
        balanceMinor=proposal["balance_minor"],
        at=now,
        by=meta.user_id,
    )
    event = await timeline.step(
        conn, meta, proposal["lead_id"], now, recorded, timeline.payment_recorded(recorded), payment["id"]
    )
    return Outcome(ok(PaymentReply(payment=PaymentView(**payment), proposal=ProposalView(**proposal)), 201), [event])


async def refund(conn: asyncpg.Connection, cmd: RefundPayment, meta: Meta) -> Outcome:
    found = await repository.payment(conn, meta.org_id, cmd.paymentId)
    if found is None:
        raise not_found("payment", cmd.paymentId)
    # The proposal's lock first, as a payment takes it; then the payment as it now is.
    proposal = present(
        await repository.proposal(conn, meta.org_id, found["proposal_id"], lock=True), "proposal", found["proposal_id"]
    )
    payment = present(await repository.payment(conn, meta.org_id, found["id"], lock=True), "payment", found["id"])
    domain.check_refund(payment["id"], cmd.amountMinor, payment["amount_minor"], payment["refunded_minor"])
    now = datetime.now(UTC)
    refunded_row = await repository.insert_refund(
        conn,
        uuid4(),
        meta.org_id,
        payment["id"],
        proposal["id"],
        cmd.amountMinor,
        payment["currency"],
        cmd.reason,
        now,
        meta.user_id,
    )
    payment = present(await repository.payment(conn, meta.org_id, payment["id"]), "payment", payment["id"])
    proposal = present(await repository.proposal(conn, meta.org_id, proposal["id"]), "proposal", proposal["id"])
    refunded = PaymentRefunded(
        refundId=refunded_row["id"],
        paymentId=payment["id"],
        proposalId=proposal["id"],
        leadId=proposal["lead_id"],
        amountMinor=refunded_row["amount_minor"],
        currency=refunded_row["currency"],
        balanceMinor=proposal["balance_minor"],
        at=now,
        by=meta.user_id,
    )
    event = await timeline.step(
        conn,
        meta,
        proposal["lead_id"],
        now,
        refunded,
        timeline.payment_refunded(refunded, payment["external_reference"]),
        refunded_row["id"],
    )
    reply = RefundReply(
        refund=RefundView(**refunded_row), payment=PaymentView(**payment), proposal=ProposalView(**proposal)
    )
    return Outcome(ok(reply, 201), [event])


def present(row: asyncpg.Record | None, what: str, ident: str) -> asyncpg.Record:
    """A row read again in this transaction (under its lock: it cannot have gone); 404 were it gone."""
    if row is None:
        raise not_found(what, ident)
    return row
