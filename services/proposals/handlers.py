"""Proposals subscribers: decode, apply the rules, persist, answer. Payments and contracts have their
own modules; `register` wires all three."""

from datetime import UTC, datetime
from uuid import uuid4

import asyncpg

from services.proposals import contracts, domain, payments, repository, timeline
from shared import lead_directory
from shared.contracts.envelope import Reply
from shared.contracts.leads import LeadCreated
from shared.contracts.proposals import (
    AcceptProposal,
    CreateContract,
    DeclineProposal,
    GetContract,
    GetProposal,
    LeadProposals,
    LeadTimeline,
    PaymentView,
    ProposalAccepted,
    ProposalDeclined,
    ProposalDetail,
    ProposalList,
    ProposalReply,
    ProposalSent,
    ProposalStatus,
    ProposalView,
    RecordPayment,
    RefundPayment,
    RefundView,
    SendContract,
    SendProposal,
    SignContract,
    TimelineEntry,
    TimelineReply,
    VoidContract,
)
from shared.lead_directory import Directory
from shared.messages import Meta, Outcome, ok
from shared.problems import not_found
from shared.service import Service


class ProposalHandlers:
    def __init__(self, directory: Directory):
        self.directory = directory

    async def send(self, conn: asyncpg.Connection, cmd: SendProposal, meta: Meta) -> Outcome:
        now = datetime.now(UTC)
        domain.check_valid_until(cmd.validUntil, now)
        lead = await self.directory.find(conn, meta.org_id, cmd.leadId)
        if lead is None:
            raise not_found("lead", cmd.leadId)
        row = await repository.insert_proposal(
            conn,
            uuid4(),
            meta.org_id,
            lead["lead_id"],
            cmd.title,
            cmd.amountMinor,
            cmd.currency,
            cmd.validUntil,
            cmd.notes,
            now,
            meta.user_id,
        )
        sent = ProposalSent(
            proposalId=row["id"],
            leadId=row["lead_id"],
            title=row["title"],
            amountMinor=row["amount_minor"],
            currency=row["currency"],
            validUntil=row["valid_until"],
            by=meta.user_id,
        )
        event = await timeline.step(conn, meta, row["lead_id"], now, sent, timeline.proposal_sent(sent), row["id"])
        return Outcome(ok(ProposalReply(proposal=ProposalView(**row)), 201), [event])

    async def accept(self, conn: asyncpg.Connection, cmd: AcceptProposal, meta: Meta) -> Outcome:
        row, now = await _locked(conn, meta.org_id, cmd.proposalId), datetime.now(UTC)
        if not domain.check_accept(row["id"], row["status"], row["valid_until"], now):
            return Outcome(ok(ProposalReply(proposal=ProposalView(**row))))
        row = await repository.decide(conn, row["id"], ProposalStatus.accepted, now, meta.user_id)
        accepted = ProposalAccepted(proposalId=row["id"], leadId=row["lead_id"], acceptedAt=now, by=meta.user_id)
        event = await timeline.step(
            conn, meta, row["lead_id"], now, accepted, timeline.proposal_accepted(row["title"]), row["id"]
        )
        return Outcome(ok(ProposalReply(proposal=ProposalView(**row))), [event])

    async def decline(self, conn: asyncpg.Connection, cmd: DeclineProposal, meta: Meta) -> Outcome:
        row, now = await _locked(conn, meta.org_id, cmd.proposalId), datetime.now(UTC)
        if not domain.check_decline(row["id"], row["status"]):
            return Outcome(ok(ProposalReply(proposal=ProposalView(**row))))
        row = await repository.decide(conn, row["id"], ProposalStatus.declined, now, meta.user_id, cmd.reason)
        declined = ProposalDeclined(
            proposalId=row["id"], leadId=row["lead_id"], reason=cmd.reason, declinedAt=now, by=meta.user_id
        )
        event = await timeline.step(
            conn, meta, row["lead_id"], now, declined, timeline.proposal_declined(row["title"], cmd.reason), row["id"]
        )
        return Outcome(ok(ProposalReply(proposal=ProposalView(**row))), [event])

    # Queries -------------------------------------------------------------------
    async def get(self, conn: asyncpg.Connection, query: GetProposal, org: str) -> Reply:
        row = await repository.proposal(conn, org, query.proposalId)
        if row is None:
            raise not_found("proposal", query.proposalId)
        return ok(
            ProposalDetail(
                proposal=ProposalView(**row),
                payments=[PaymentView(**r) for r in await repository.payments_of(conn, row["id"])],
                refunds=[RefundView(**r) for r in await repository.refunds_of(conn, row["id"])],
                contracts=[contracts.view(r) for r in await repository.contracts_of(conn, row["id"])],
            )
        )

    async def of_lead(self, conn: asyncpg.Connection, query: LeadProposals, org: str) -> Reply:
        lead = await self.directory.find(conn, org, query.leadId)
        if lead is None:
            raise not_found("lead", query.leadId)
        rows = await repository.proposals_of_lead(conn, org, lead["lead_id"])
        return ok(ProposalList(proposals=[ProposalView(**r) for r in rows]))

    async def timeline(self, conn: asyncpg.Connection, query: LeadTimeline, org: str) -> Reply:
        lead = await self.directory.find(conn, org, query.leadId)
        if lead is None:
            raise not_found("lead", query.leadId)
        rows = await repository.timeline_of(conn, org, lead["lead_id"])
        return ok(TimelineReply(timeline=[TimelineEntry(**r) for r in rows]))


async def _locked(conn: asyncpg.Connection, org: str, proposal_id: str) -> asyncpg.Record:
    row = await repository.proposal(conn, org, proposal_id, lock=True)
    if row is None:
        raise not_found("proposal", proposal_id)
    return row


def register(service: Service, directory: Directory) -> None:
    proposals = ProposalHandlers(directory)
    service.command(
        SendProposal, proposals.send, "Send a proposal to a lead of the caller's organisation. Emits proposals.sent."
    )
    service.command(
        AcceptProposal,
        proposals.accept,
        "Accept a sent, unexpired proposal. Emits proposals.accepted (none when already accepted).",
    )
    service.command(
        DeclineProposal,
        proposals.decline,
        "Decline a sent proposal. Emits proposals.declined (none when already declined).",
    )
    service.command(
        RecordPayment,
        payments.record,
        "Record a payment against an accepted proposal, never above its balance; one payment per "
        "external reference. Emits payments.recorded (none when the reference is known).",
    )
    service.command(
        RefundPayment,
        payments.refund,
        "Refund (part of) a payment, never more than what is left of it. Emits payments.refunded.",
    )
    service.command(
        CreateContract,
        contracts.create,
        "Make a draft contract from an accepted proposal (one open contract per proposal). Emits contracts.created.",
    )
    service.command(SendContract, contracts.send, "Send a draft contract. Emits contracts.sent.")
    service.command(
        SignContract,
        contracts.sign,
        "Sign a draft or sent contract; a signed contract never changes. Emits contracts.signed.",
    )
    service.command(VoidContract, contracts.void, "Void a draft or sent contract. Emits contracts.voided.")
    service.event(
        LeadCreated, lead_directory.remember_created, "Learn of a new lead (the proposals projection of leads)."
    )
    service.query(GetProposal, proposals.get, "One proposal with its payments, refunds and contracts.")
    service.query(LeadProposals, proposals.of_lead, "A lead's proposals, newest first.")
    service.query(GetContract, contracts.get, "One contract of the caller's organisation.")
    service.query(LeadTimeline, proposals.timeline, "A lead's deal timeline, oldest first.")
