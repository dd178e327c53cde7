"""Proposals, payments and contracts (the `proposals` service): commands, queries, events, views.

Money is an integer of minor units (`amountMinor`: cents for USD/EUR) with an ISO 4217
currency; never a float. A proposal's balance = amount - paid + refunded, always >= 0.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from shared.contracts.declare import Button, Read
from shared.contracts.envelope import Command, EventData, Query
from shared.contracts.leads import LeadId
from shared.problems import (
    AlreadyExists,
    ContractClosed,
    CurrencyMismatch,
    NotFound,
    Overpayment,
    ProposalExpired,
    ProposalNotAccepted,
    ProposalNotOpen,
    ReferenceReused,
    RefundTooLarge,
)

SERVICE = "proposals"
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Minor = Annotated[int, Field(gt=0, le=10**13, description="an amount in minor units (cents), > 0")]
Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class ProposalStatus(StrEnum):
    sent = "sent"
    accepted = "accepted"
    declined = "declined"


class PaymentMethod(StrEnum):
    card = "card"
    bank_transfer = "bank_transfer"
    cash = "cash"
    cheque = "cheque"
    other = "other"


class ContractStatus(StrEnum):
    """draft → sent → signed (final); draft or sent → void (final)."""

    draft = "draft"
    sent = "sent"
    signed = "signed"
    void = "void"


# Commands ------------------------------------------------------------------
class SendProposal(Command):
    """Moves the lead to `proposal` (through `proposals.sent`, applied by the leads service)."""

    ROUTING_KEY = "proposals.send"
    leadId: LeadId
    title: Title
    amountMinor: Minor
    currency: Currency
    validUntil: AwareDatetime
    notes: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class AcceptProposal(Command):
    """A sent, unexpired proposal; moves the lead to `won`."""

    ROUTING_KEY = "proposals.accept"
    proposalId: Id


class DeclineProposal(Command):
    """A sent proposal; moves the lead to `lost`."""

    ROUTING_KEY = "proposals.decline"
    proposalId: Id
    reason: Reason | None = None


class RecordPayment(Command):
    """Against an accepted proposal; the same externalReference twice is one payment; never above the balance."""

    ROUTING_KEY = "proposals.record_payment"
    proposalId: Id
    amountMinor: Minor
    currency: Currency
    method: PaymentMethod
    externalReference: Reference


class RefundPayment(Command):
    """Never more than what is left of the payment (its amount less earlier refunds)."""

    ROUTING_KEY = "proposals.refund_payment"
    paymentId: Id
    amountMinor: Minor
    reason: Reason | None = None


class CreateContract(Command):
    """From an accepted proposal: a snapshot of its terms (one open contract per proposal)."""

    ROUTING_KEY = "proposals.create_contract"
    proposalId: Id


class SendContract(Command):
    ROUTING_KEY = "proposals.send_contract"
    contractId: Id


class SignContract(Command):
    """A draft or sent contract; once signed it never changes."""

    ROUTING_KEY = "proposals.sign_contract"
    contractId: Id
    signerName: Title
    signedAt: AwareDatetime | None = None


class VoidContract(Command):
    """A draft or sent contract (a signed one never changes)."""

    ROUTING_KEY = "proposals.void_contract"
    contractId: Id
    reason: Reason


# Queries -------------------------------------------------------------------
class GetProposal(Query):
    ROUTING_KEY = "proposals.query.get"
    proposalId: Id


class LeadProposals(Query):
    ROUTING_KEY = "proposals.query.of_lead"
    leadId: LeadId


class GetContract(Query):
    ROUTING_KEY = "proposals.query.contract"
    contractId: Id


class LeadTimeline(Query):
    ROUTING_KEY = "proposals.query.timeline"
    leadId: LeadId


# Views ---------------------------------------------------------------------
class ProposalView(BaseModel):
    id: str
    lead_id: str
    title: str
    amount_minor: int
    currency: str
    valid_until: datetime
    notes: str | None
    status: ProposalStatus
    paid_minor: int  # payments less refunds
    balance_minor: int  # amount_minor - paid_minor
    created_at: datetime
    created_by: str
    decided_at: datetime | None
    decided_by: str | None
    decline_reason: str | None


class PaymentView(BaseModel):
    id: str
    proposal_id: str
    amount_minor: int
    currency: str
    method: PaymentMethod
    external_reference: str
    refunded_minor: int
    recorded_at: datetime
    recorded_by: str


class RefundView(BaseModel):
    id: str
    payment_id: str
    amount_minor: int
    currency: str
    reason: str | None
    refunded_at: datetime
    refunded_by: str


class ContractTerms(BaseModel):
    """The proposal's terms as they were when the contract was made."""

    title: str
    amount_minor: int
    currency: str
    valid_until: datetime


class ContractView(BaseModel):
    id: str
    proposal_id: str
    lead_id: str
    status: ContractStatus
    terms: ContractTerms
    created_at: datetime
    sent_at: datetime | None
    signed_at: datetime | None
    signer_name: str | None
    voided_at: datetime | None
    void_reason: str | None


class ProposalReply(BaseModel):
    proposal: ProposalView


class ProposalDetail(BaseModel):
    proposal: ProposalView
    payments: list[PaymentView]
    refunds: list[RefundView]
    contracts: list[ContractView]


class ProposalList(BaseModel):
    proposals: list[ProposalView]


class PaymentReply(BaseModel):
    payment: PaymentView
    proposal: ProposalView


class RefundReply(BaseModel):
    refund: RefundView
    payment: PaymentView
    proposal: ProposalView


class ContractReply(BaseModel):
    contract: ContractView


class TimelineEntry(BaseModel):
    """One step of a lead's deal: proposal sent / accepted / declined, payment recorded / refunded,
    contract created / sent / signed / voided (the event type), oldest first."""

    at: datetime
    type: str
    summary: str
    ref_id: str
    by: str


class TimelineReply(BaseModel):
    timeline: list[TimelineEntry]


# Events (exchange `events`, routing key = type) ----------------------------
class ProposalSent(EventData):
    """data of `proposals.sent` (the leads service moves the lead to `proposal`)"""

    TYPE = "proposals.sent"
    proposalId: str
    leadId: str
    title: str
    amountMinor: int
    currency: str
    validUntil: datetime
    by: str


class ProposalAccepted(EventData):
    """data of `proposals.accepted` (the leads service moves the lead to `won`)"""

    TYPE = "proposals.accepted"
    proposalId: str
    leadId: str
    acceptedAt: datetime
    by: str


class ProposalDeclined(EventData):
    """data of `proposals.declined` (the leads service moves the lead to `lost`)"""

    TYPE = "proposals.declined"
    proposalId: str
    leadId: str
    reason: str | None
    declinedAt: datetime
    by: str


class PaymentRecorded(EventData):
    """data of `payments.recorded`"""

    TYPE = "payments.recorded"
    paymentId: str
    proposalId: str
    leadId: str
    amountMinor: int
    currency: str
    method: PaymentMethod
    externalReference: str
    balanceMinor: int
    at: datetime
    by: str


class PaymentRefunded(EventData):
    """data of `payments.refunded`"""

    TYPE = "payments.refunded"
    refundId: str
    paymentId: str
    proposalId: str
    leadId: str
    amountMinor: int
    currency: str
    balanceMinor: int
    at: datetime
    by: str


class ContractChanged(EventData):
    """data of every `contracts.*` event: the contract as it now is."""

    contractId: str
    proposalId: str
    leadId: str
    status: ContractStatus
    at: datetime
    by: str


class ContractCreated(ContractChanged):
    """data of `contracts.created`"""

    TYPE = "contracts.created"


class ContractSent(ContractChanged):
    """data of `contracts.sent`"""

    TYPE = "contracts.sent"


class ContractSigned(ContractChanged):
    """data of `contracts.signed`"""

    TYPE = "contracts.signed"
    signerName: str


class ContractVoided(ContractChanged):
    """data of `contracts.voided`"""

    TYPE = "contracts.voided"
    reason: str


EVENTS: tuple[type[EventData], ...] = (
    ProposalSent,
    ProposalAccepted,
    ProposalDeclined,
    PaymentRecorded,
    PaymentRefunded,
    ContractCreated,
    ContractSent,
    ContractSigned,
    ContractVoided,
)


BUTTONS = (
    Button(
        "send_proposal",
        "/api/proposals",
        SendProposal,
        ProposalReply,
        "Send a proposal to a lead (moves the lead to proposal)",
        status=201,
        cli="proposal send leadId title amountMinor currency validUntil",
        flags={"amountMinor": "--amount-minor"},
        refusals=(NotFound,),
        events=(ProposalSent,),
    ),
    Button(
        "accept_proposal",
        "/api/proposals/accept",
        AcceptProposal,
        ProposalReply,
        "Accept a sent proposal (moves the lead to won)",
        cli="proposal accept proposalId",
        refusals=(NotFound, ProposalNotOpen, ProposalExpired),
        events=(ProposalAccepted,),
    ),
    Button(
        "decline_proposal",
        "/api/proposals/decline",
        DeclineProposal,
        ProposalReply,
        "Decline a sent proposal (moves the lead to lost)",
        cli="proposal decline proposalId",
        refusals=(NotFound, ProposalNotOpen),
        events=(ProposalDeclined,),
    ),
    Button(
        "record_payment",
        "/api/payments",
        RecordPayment,
        PaymentReply,
        "Record a payment against an accepted proposal (one per external reference, never above the balance)",
        status=201,
        cli="payment record proposalId amountMinor currency method externalReference",
        refusals=(NotFound, ProposalNotAccepted, CurrencyMismatch, Overpayment, ReferenceReused),
        events=(PaymentRecorded,),
    ),
    Button(
        "refund_payment",
        "/api/payments/refund",
        RefundPayment,
        RefundReply,
        "Refund (part of) a payment, never more than was paid",
        status=201,
        cli="payment refund paymentId amountMinor",
        refusals=(NotFound, RefundTooLarge),
        events=(PaymentRefunded,),
    ),
    Button(
        "create_contract",
        "/api/contracts",
        CreateContract,
        ContractReply,
        "Make a contract from an accepted proposal (a snapshot of its terms)",
        status=201,
        cli="contract create proposalId",
        refusals=(NotFound, ProposalNotAccepted, AlreadyExists),
        events=(ContractCreated,),
    ),
    Button(
        "send_contract",
        "/api/contracts/send",
        SendContract,
        ContractReply,
        "Send a draft contract",
        cli="contract send contractId",
        refusals=(NotFound, ContractClosed),
        events=(ContractSent,),
    ),
    Button(
        "sign_contract",
        "/api/contracts/sign",
        SignContract,
        ContractReply,
        "Mark a draft or sent contract signed (it never changes after)",
        cli="contract sign contractId signerName",
        refusals=(NotFound, ContractClosed),
        events=(ContractSigned,),
    ),
    Button(
        "void_contract",
        "/api/contracts/void",
        VoidContract,
        ContractReply,
        "Void a draft or sent contract, with a reason",
        cli="contract void contractId reason",
        refusals=(NotFound, ContractClosed),
        events=(ContractVoided,),
    ),
)
READS = (
    Read(
        "get_proposal",
        "/api/proposals/{proposalId}",
        GetProposal,
        ProposalDetail,
        "A proposal with its payments, refunds and contracts",
        cli="proposal get proposalId",
    ),
    Read(
        "lead_proposals",
        "/api/leads/{leadId}/proposals",
        LeadProposals,
        ProposalList,
        "A lead's proposals, newest first",
        cli="proposal list leadId",
    ),
    Read(
        "get_contract",
        "/api/contracts/{contractId}",
        GetContract,
        ContractReply,
        "One contract",
        cli="contract get contractId",
    ),
    Read(
        "lead_timeline",
        "/api/leads/{leadId}/timeline",
        LeadTimeline,
        TimelineReply,
        "A lead's deal timeline: proposals, payments and contracts, oldest first",
        cli="lead timeline leadId",
    ),
)
