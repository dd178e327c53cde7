"""A press and what it must have done: each press of the run is recorded with its key and its expected effect.

    Press ── key (one per press, reused on every retry and on the other gateway) ──► message id
         ├─ counts:  SQL counts the final state must show (`want` rows: fewer = lost, more = duplicated)
         ├─ texts:   SMS the sandbox must have received (per phone and body)
         ├─ events:  events the log must hold with command_id = the message id (distinct event ids)
         ├─ follows: events caused by one of those events (a confirmation SMS, a lead following its deal)
         └─ claims:  the unique names it introduced (a lead's name, a title, an SMS body...), so that an
                     effect nobody pressed for is found (unexpected)

Every name, title, body and reference a press carries is unique to the run, so each count is exact.
"""

from dataclasses import dataclass, field
from datetime import datetime
from random import Random
from typing import Any
from uuid import uuid5

from crm_client import buttons as b
from crm_client.http import FilePart
from crm_client.press import Press as Operation

from services.gateway.views import KEY_NAMESPACE
from shared.contracts import bookings, campaigns, documents, leads, proposals, sms
from shared.contracts.envelope import Command


@dataclass(frozen=True)
class Count:
    label: str
    sql: str  # $1 is the organisation
    args: tuple[Any, ...]
    want: int  # more is a duplicate (or, where 0 is wanted, unexpected)
    least: int | None = None  # fewer is lost (None: `want`)

    @property
    def minimum(self) -> int:
        return self.want if self.least is None else self.least


@dataclass(frozen=True)
class Text:
    phone: str
    body: str  # exact, or a part of it when `partial`
    want: int
    partial: bool = False


@dataclass
class Press:
    seq: int
    kind: str
    operation: Operation
    command: type[Command]
    org: str
    user: str
    via: str  # "gateway" or "broker"
    key: str
    message_id: str
    counts: list[Count] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)
    follows: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)  # (least, most)
    claims: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)  # the fields the gateway takes from the path
    file: FilePart | None = None  # an upload: multipart through a gateway, never straight on the broker
    # What happened to it
    status: int | None = None
    body: Any = None
    outcome: str = "pending"  # accepted, refused, failed (5xx final), unresolved
    sends: int = 0
    failovers: int = 0
    dup_copies: int = 0
    started: float = 0.0
    ended: float = 0.0

    @property
    def accepted(self) -> bool:
        return self.outcome == "accepted"

    def body_json(self) -> bytes:
        """The command as the gateway publishes it (the same fingerprint in the inbox)."""
        return self.command.model_validate({**self.operation.body, **self.params}).model_dump_json().encode()


class Factory:
    """Makes the presses of one run: sequence numbers, keys, users, the way in (gateway or broker).
    The driver records each press it sends (`Driver.presses`)."""

    def __init__(self, org: str, users: list[str], rng: Random, broker_share: float, run: str):
        self.org, self.users, self.rng, self.broker_share, self.run = org, users, rng, broker_share, run
        self.seq = self.phones = 0

    def unique(self, what: str) -> str:
        self.seq += 1
        return f"{what}-{self.run}-{self.seq}"

    def phone(self) -> str:
        """A number of its own for each lead (SMS are counted per number): 90,000 before one comes again."""
        self.phones += 1
        area = ("415", "212", "312", "617", "206", "303", "503", "702", "808")[self.phones // 10_000 % 9]
        return f"+1{area}555{self.phones % 10_000:04d}"

    def press(self, kind: str, operation: Operation, command: type[Command], *, broker: bool = True) -> Press:
        self.seq += 1
        user = self.rng.choice(self.users)
        key = f"chaos-{self.run}-{self.seq}"
        via = "broker" if broker and self.rng.random() < self.broker_share else "gateway"
        message_id = (
            key if via == "broker" else str(uuid5(KEY_NAMESPACE, "\n".join((self.org, user, operation.path, key))))
        )
        return Press(self.seq, kind, operation, command, self.org, user, via, key, message_id)

    # The buttons ---------------------------------------------------------------------------------
    def create_lead(self, name: str, phone: str, time_zone: str | None = None) -> Press:
        p = self.press("create_lead", b.create_lead(name, phone, time_zone=time_zone), leads.CreateLead)
        p.counts.append(Count("lead", "SELECT count(*) FROM leads.leads WHERE org_id = $1 AND name = $2", (name,), 1))
        p.events = {"leads.created": 1}
        p.claims = {"lead": name}
        return p

    def update_status(self, lead_id: str, status: str, expected: str | None = None) -> Press:
        p = self.press("update_status", b.update_lead_status(lead_id, status, expected), leads.UpdateLeadStatus)
        p.counts.append(_moves(p.message_id, status, 1))
        p.events = {"leads.status_changed": 1}
        return p

    def bulk_status(self, lead_ids: list[str], status: str) -> Press:
        p = self.press("bulk_status", b.bulk_update_lead_status(lead_ids, status), leads.BulkUpdateLeadStatus)
        p.counts.append(_moves(p.message_id, status, len(lead_ids)))
        p.events = {"leads.status_changed": len(lead_ids)}
        return p

    def create_appointment(self, lead_id: str, starts_at: datetime, title: str) -> Press:
        p = self.press(
            "create_appointment", b.create_appointment(lead_id, starts_at, 30, title), bookings.CreateAppointment
        )
        p.counts.append(
            Count(
                "appointment",
                "SELECT count(*) FROM bookings.appointments WHERE org_id = $1 AND title = $2",
                (title,),
                1,
            )
        )
        p.events = {"appointments.created": 1}
        p.claims = {"appointment": title}
        return p

    def confirm(self, appointment_id: str, lead_id: str, phone: str, by: str, send_sms: bool) -> Press:
        p = self.press(
            "confirm_sms" if send_sms else "confirm",
            b.confirm_booking(appointment_id, by, None, send_sms),
            bookings.ConfirmAppointment,
        )
        p.counts.append(
            _one("confirmed", "bookings.appointments", appointment_id, "status = 'confirmed' AND confirmed_by = $3", by)
        )
        wanted = 1 if send_sms else 0
        p.counts.append(
            Count(
                "confirmation sms",
                "SELECT count(*) FROM sms.sms_messages WHERE org_id = $1 "
                "AND lead_id = $2::uuid AND status IN ('sent', 'delivered')",
                (lead_id,),
                wanted,
            )
        )
        p.texts.append(Text(phone, "is confirmed", wanted, partial=True))
        p.events = {"appointments.confirmed": 1}
        p.follows = {"appointments.confirmed": {"sms.sent": (wanted, wanted)}}
        p.claims = {"confirm_sms": lead_id} if send_sms else {}
        return p

    def reschedule(self, appointment_id: str, starts_at: datetime) -> Press:
        p = self.press(
            "reschedule", b.reschedule_appointment(appointment_id, starts_at), bookings.RescheduleAppointment
        )
        p.counts.append(_one("rescheduled", "bookings.appointments", appointment_id, "starts_at = $3", starts_at))
        p.events = {"appointments.rescheduled": 1}
        return p

    def cancel(self, appointment_id: str, reason: str) -> Press:
        p = self.press("cancel", b.cancel_appointment(appointment_id, reason), bookings.CancelAppointment)
        p.counts.append(
            Count(
                "cancelled",
                "SELECT count(*) FROM bookings.appointments WHERE org_id = $1 "
                "AND status = 'cancelled' AND cancel_reason = $2",
                (reason,),
                1,
            )
        )
        p.events = {"appointments.cancelled": 1}
        return p

    def send_sms(self, lead_id: str, phone: str, body: str) -> Press:
        p = self.press("send_sms", b.send_sms(lead_id, body), sms.SendSms)
        p.counts.append(
            Count(
                "sms",
                "SELECT count(*) FROM sms.sms_messages WHERE org_id = $1 AND body = $2 "
                "AND status IN ('sent', 'delivered')",
                (body,),
                1,
            )
        )
        p.texts.append(Text(phone, body, 1))
        p.events = {"sms.sent": 1}
        p.claims = {"sms": body}
        return p

    def send_proposal(self, lead_id: str, title: str, amount: int, valid_until: datetime) -> Press:
        p = self.press(
            "send_proposal", b.send_proposal(lead_id, title, amount, "USD", valid_until), proposals.SendProposal
        )
        p.counts.append(
            Count("proposal", "SELECT count(*) FROM proposals.proposals WHERE org_id = $1 AND title = $2", (title,), 1)
        )
        # Once at most: when the accept's event overtakes this one (a retry delayed it), the lead goes
        # straight to won and this move is skipped, as the rules say (a won lead moves no more).
        p.counts.append(_lead_moved(lead_id, "proposal", least=0))
        p.events = {"proposals.sent": 1}
        p.follows = {"proposals.sent": {"leads.status_changed": (0, 1)}}
        p.claims = {"proposal": title}
        return p

    def accept(self, proposal_id: str, lead_id: str) -> Press:
        p = self.press("accept_proposal", b.accept_proposal(proposal_id), proposals.AcceptProposal)
        p.counts.append(_one("accepted", "proposals.proposals", proposal_id, "status = 'accepted'"))
        p.counts.append(_lead_moved(lead_id, "won"))
        p.events = {"proposals.accepted": 1}
        p.follows = {"proposals.accepted": {"leads.status_changed": (1, 1)}}
        return p

    def decline(self, proposal_id: str, lead_id: str, reason: str) -> Press:
        p = self.press("decline_proposal", b.decline_proposal(proposal_id, reason), proposals.DeclineProposal)
        p.counts.append(_one("declined", "proposals.proposals", proposal_id, "status = 'declined'"))
        p.counts.append(_lead_moved(lead_id, "lost"))  # from new or from proposal, whichever event came first
        p.events = {"proposals.declined": 1}
        p.follows = {"proposals.declined": {"leads.status_changed": (1, 1)}}
        return p

    def record_payment(self, proposal_id: str, amount: int, reference: str, *, paid: bool = True) -> Press:
        """`paid`: the proposal's paid total is this payment (False where a refund follows and changes it)."""
        p = self.press(
            "record_payment", b.record_payment(proposal_id, amount, "USD", "card", reference), proposals.RecordPayment
        )
        p.counts.append(
            Count(
                "payment",
                "SELECT count(*) FROM proposals.payments WHERE org_id = $1 "
                "AND external_reference = $2 AND amount_minor = $3",
                (reference, amount),
                1,
            )
        )
        if paid:
            p.counts.append(_one("paid", "proposals.proposals", proposal_id, "paid_minor = $3", amount))
        p.events = {"payments.recorded": 1}
        p.claims = {"payment": reference}
        return p

    def create_contract(self, proposal_id: str) -> Press:
        p = self.press("create_contract", b.create_contract(proposal_id), proposals.CreateContract)
        p.counts.append(
            Count(
                "contract",
                "SELECT count(*) FROM proposals.contracts WHERE org_id = $1 AND proposal_id = $2::uuid",
                (proposal_id,),
                1,
            )
        )
        p.events = {"contracts.created": 1}
        p.claims = {"contract": proposal_id}
        return p

    def refund(self, payment_id: str, proposal_id: str, amount: int, paid_after: int, reason: str) -> Press:
        p = self.press("refund_payment", b.refund_payment(payment_id, amount, reason), proposals.RefundPayment)
        p.counts.append(
            Count(
                "refund",
                "SELECT count(*) FROM proposals.refunds WHERE org_id = $1 AND reason = $2 AND amount_minor = $3",
                (reason, amount),
                1,
            )
        )
        p.counts.append(
            _one("paid after the refund", "proposals.proposals", proposal_id, "paid_minor = $3", paid_after)
        )
        p.events = {"payments.refunded": 1}
        p.claims = {"refund": reason}
        return p

    def send_contract(self, contract_id: str) -> Press:
        p = self.press("send_contract", b.send_contract(contract_id), proposals.SendContract)
        p.counts.append(_one("contract sent", "proposals.contracts", contract_id, "sent_at IS NOT NULL"))
        p.events = {"contracts.sent": 1}
        return p

    def void_contract(self, contract_id: str, reason: str) -> Press:
        p = self.press("void_contract", b.void_contract(contract_id, reason), proposals.VoidContract)
        p.counts.append(
            _one("voided", "proposals.contracts", contract_id, "status = 'void' AND void_reason = $3", reason)
        )
        p.events = {"contracts.voided": 1}
        return p

    def create_template(self, name: str, body: str) -> Press:
        p = self.press("create_template", b.create_template(name, body), sms.CreateTemplate)
        p.counts.append(
            Count("template", "SELECT count(*) FROM sms.sms_templates WHERE org_id = $1 AND name = $2", (name,), 1)
        )
        p.claims = {"template": name}
        return p

    def create_campaign(
        self, name: str, template_id: str, lead_ids: list[str], window: tuple[str, str] = ("00:00", "23:59:59.999999")
    ) -> Press:
        """Sent all day by default (no quiet hours): the run checks its SMS at the end, whatever hour it runs at."""
        p = self.press(
            "create_campaign",
            b.create_campaign(name, template_id, lead_ids, send_from=window[0], send_until=window[1]),
            campaigns.CreateCampaign,
        )
        p.counts.append(
            Count("campaign", "SELECT count(*) FROM sms.campaigns WHERE org_id = $1 AND name = $2", (name,), 1)
        )
        p.events = {"campaigns.created": 1}
        p.claims = {"campaign": name}
        return p

    def start_campaign(self, campaign_id: str, body: str, phones: list[str], *, quiet: bool = False) -> Press:
        """Every lead of the campaign texted once with the template's `body` (it has no fields), and the
        campaign completed, whatever was killed on the way. `quiet`: its window is shut for the whole run,
        so its targets are recorded and no lead is texted."""
        p = self.press("start_campaign", b.start_campaign(campaign_id), campaigns.StartCampaign)
        p.params = {"campaignId": campaign_id}
        p.events = {"campaigns.started": 1}
        if quiet:
            p.counts.append(_targets("targets recorded", campaign_id, len(phones)))
            p.texts += [Text(phone, body, 0) for phone in phones]
            return p
        p.counts.append(_one("campaign completed", "sms.campaigns", campaign_id, "status = 'completed'"))
        p.counts.append(_targets("targets sent", campaign_id, len(phones), "t.state = 'sent'"))
        p.counts.append(
            Count(
                "campaign sms",
                "SELECT count(*) FROM sms.sms_messages WHERE org_id = $1 AND body = $2 "
                "AND status IN ('sent', 'delivered')",
                (body,),
                len(phones),
            )
        )
        p.texts += [Text(phone, body, 1) for phone in phones]
        p.claims = {"sms": body}
        return p

    def move_campaign(self, how: str, campaign_id: str, targets: int = 0) -> Press:
        """Pause, resume or cancel (`targets`: the campaign's leads, skipped when it is cancelled)."""
        command = {
            "pause": campaigns.PauseCampaign,
            "resume": campaigns.ResumeCampaign,
            "cancel": campaigns.CancelCampaign,
        }[how]
        p = self.press(f"{how}_campaign", getattr(b, f"{how}_campaign")(campaign_id), command)
        p.params = {"campaignId": campaign_id}
        p.events = {f"campaigns.{'cancelled' if how == 'cancel' else how + 'd'}": 1}
        if how == "cancel":
            p.counts.append(_one("cancelled", "sms.campaigns", campaign_id, "status = 'cancelled'"))
            p.counts.append(
                _targets("targets skipped", campaign_id, targets, "t.state = 'skipped' AND t.reason = 'cancelled'")
            )
        return p

    def attach_document(self, lead_id: str, filename: str, content: bytes) -> Press:
        """The bytes go to the blob store first (the claim check): only a gateway takes an upload."""
        p = self.press(
            "attach_document",
            Operation("attach_document", f"/api/leads/{lead_id}/documents", {}),
            documents.AttachDocument,
            broker=False,
        )
        p.file = FilePart("file", content, filename)
        p.counts.append(
            Count(
                "document",
                "SELECT count(*) FROM documents.documents WHERE org_id = $1 AND lead_id = $2::uuid AND filename = $3",
                (lead_id, filename),
                1,
            )
        )
        p.events = {"documents.attached": 1}
        p.claims = {"document": filename}
        return p

    def delete_document(self, document_id: str) -> Press:
        p = self.press("delete_document", b.delete_document(document_id), documents.DeleteDocument)
        p.params = {"documentId": document_id}
        p.counts.append(_one("document deleted", "documents.documents", document_id, "deleted_at IS NOT NULL"))
        p.events = {"documents.deleted": 1}
        return p

    def sign_contract(self, contract_id: str, signer: str) -> Press:
        p = self.press("sign_contract", b.sign_contract(contract_id, signer), proposals.SignContract)
        p.counts.append(
            _one("signed", "proposals.contracts", contract_id, "status = 'signed' AND signer_name = $3", signer)
        )
        p.events = {"contracts.signed": 1}
        return p


def _one(label: str, table: str, row_id: str, state: str, *args: Any) -> Count:
    """Row `row_id` of `table` (the organisation's) is in `state` (its $3... are `args`): once."""
    return Count(
        label, f"SELECT count(*) FROM {table} WHERE org_id = $1 AND id = $2::uuid AND {state}", (row_id, *args), 1
    )


def _targets(label: str, campaign_id: str, want: int, state: str = "true") -> Count:
    """`want` targets of the campaign in `state`."""
    return Count(
        label,
        "SELECT count(*) FROM sms.campaign_targets t JOIN sms.campaigns c ON c.id = t.campaign_id "
        f"WHERE c.org_id = $1 AND c.id = $2::uuid AND {state}",
        (campaign_id,),
        want,
    )


def _moves(message_id: str, status: str, want: int) -> Count:
    return Count(
        "moved",
        "SELECT count(*) FROM leads.lead_status_history WHERE org_id = $1 AND command_id = $2 AND to_status = $3",
        (message_id, status),
        want,
    )


def _lead_moved(lead_id: str, status: str, least: int | None = None) -> Count:
    """The lead follows its deal (through the proposal's event, applied by the leads service): once."""
    return Count(
        f"lead to {status}",
        "SELECT count(*) FROM leads.lead_status_history WHERE org_id = $1 AND lead_id = $2::uuid AND to_status = $3",
        (lead_id, status),
        1,
        least,
    )
