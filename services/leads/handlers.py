"""Leads subscribers: decode, apply the rules, persist, answer.

Commands run through `shared.consumer.Commands` (inbox, outbox, retry, reply);
queries are answered straight from the tables.
"""

import base64
import binascii
import json
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg
from pydantic import BaseModel

from services.leads import domain, repository
from shared import logging
from shared.contracts.envelope import Event, Reply
from shared.contracts.leads import (
    BulkFailure,
    BulkReply,
    BulkUpdateLeadStatus,
    CreateLead,
    GetLead,
    GetLeads,
    HistoryEntry,
    HistoryReply,
    LeadCreated,
    LeadHistory,
    LeadPage,
    LeadReply,
    LeadStatus,
    LeadStatusChanged,
    LeadStatusReply,
    LeadStatusView,
    LeadView,
    ListLeads,
    UpdateLeadStatus,
    can_move,
)
from shared.contracts.proposals import ProposalAccepted, ProposalDeclined, ProposalSent
from shared.messages import Meta, Outcome, ok
from shared.problems import BulkRefused, invalid, not_found
from shared.service import Service

log = logging.get("leads")
Deal = ProposalSent | ProposalAccepted | ProposalDeclined
# What each deal event asks of its lead (shared.contracts.proposals).
DEAL_MOVES: dict[type[Deal], LeadStatus] = {
    ProposalSent: LeadStatus.proposal,
    ProposalAccepted: LeadStatus.won,
    ProposalDeclined: LeadStatus.lost,
}


class LeadHandlers:
    def __init__(self, default_region: str):
        self.default_region = default_region

    async def create(self, conn: asyncpg.Connection, cmd: CreateLead, meta: Meta) -> Outcome:
        phone = domain.normalize_phone(cmd.phone, self.default_region)
        now = datetime.now(UTC)
        row = await repository.insert(
            conn, uuid4(), meta.org_id, cmd.name, phone, cmd.email, now, meta.user_id, cmd.timeZone
        )
        lead = LeadView(**row)
        created = LeadCreated(
            leadId=lead.id,
            name=lead.name,
            phone=lead.phone,
            email=lead.email,
            status=lead.status,
            createdAt=lead.created_at,
            by=meta.user_id,
            timeZone=lead.timeZone,
        )
        return Outcome(ok(LeadReply(lead=lead), 201), [meta.event(created)])

    async def update_status(self, conn: asyncpg.Connection, cmd: UpdateLeadStatus, meta: Meta) -> Outcome:
        lead_id = repository.canonical(cmd.leadId)
        lead = (await repository.lock_statuses(conn, meta.org_id, [lead_id])).get(lead_id) if lead_id else None
        if lead_id is None or lead is None:
            raise not_found("lead", cmd.leadId)
        if not domain.check_move(lead_id, lead["status"], cmd.status, cmd.expectedStatus):
            return Outcome(ok(LeadStatusReply(lead=LeadStatusView(**lead))))
        changed, events = await self._apply(conn, meta, {lead_id: lead["status"]}, cmd.status)
        return Outcome(ok(LeadStatusReply(lead=changed[lead_id])), events)

    async def bulk_update_status(self, conn: asyncpg.Connection, cmd: BulkUpdateLeadStatus, meta: Meta) -> Outcome:
        # A repeated id counts once (in any spelling of the same uuid); failures name the id as given.
        given: dict[str, str] = {}
        for raw in cmd.leadIds:
            given.setdefault(repository.canonical(raw) or raw, raw)
        ids = list(given)
        current = await repository.lock_statuses(conn, meta.org_id, ids)
        failed = [
            BulkFailure(leadId=given[i], reason=r)
            for i in ids
            if (r := domain.bulk_failure_reason(current[i]["status"] if i in current else None, cmd.status))
        ]
        if failed:
            raise BulkRefused(
                f"{len(failed)} of {len(ids)} leads cannot move to {cmd.status}; nothing was changed",
                updated=0,
                failed=[f.model_dump() for f in failed],
                leads=[],
            )
        changing = {i: current[i]["status"] for i in ids if current[i]["status"] != cmd.status}
        changed, events = await self._apply(conn, meta, changing, cmd.status)
        leads = [changed.get(i) or LeadStatusView(**current[i]) for i in ids]
        return Outcome(ok(BulkReply(updated=len(changing), failed=[], leads=leads)), events)

    async def follow_deal(self, conn: asyncpg.Connection, deal: Deal, meta: Meta) -> Outcome:
        """A proposal sent / accepted / declined moves its lead (to proposal / won / lost) when the rules
        allow it; otherwise the lead stays as it is (someone moved it meanwhile) and the skip is logged."""
        target = DEAL_MOVES[type(deal)]
        lead_id = repository.canonical(deal.leadId)
        lead = (await repository.lock_statuses(conn, meta.org_id, [lead_id])).get(lead_id) if lead_id else None
        if lead_id is None or lead is None or lead["status"] == target or not can_move(lead["status"], target):
            log.info(
                "lead.deal_move_skipped",
                lead_id=lead_id or deal.leadId,
                deal_event=deal.TYPE,
                target=str(target),
                current=str(lead["status"]) if lead else None,
            )
            return Outcome(ok(FollowReply(applied=False)))
        _, events = await self._apply(conn, meta, {lead_id: lead["status"]}, target, deal.by)
        return Outcome(ok(FollowReply(applied=True)), events)

    async def _apply(
        self,
        conn: asyncpg.Connection,
        meta: Meta,
        previous: dict[str, LeadStatus],
        status: LeadStatus,
        by: str | None = None,
    ) -> tuple[dict[str, LeadStatusView], list[Event]]:
        """Move the leads in `previous` (id -> old status) to `status`; their new views and events."""
        if not previous:
            return {}, []
        now, by = datetime.now(UTC), by or meta.user_id
        await repository.set_status(conn, meta.org_id, list(previous), status, now, by, meta.message_id)
        views = {i: LeadStatusView(id=i, status=status, status_changed_at=now) for i in previous}
        events = [
            meta.event(LeadStatusChanged(leadId=i, from_=old, to=status, changedAt=now, by=by))
            for i, old in previous.items()
        ]
        return views, events

    # Queries -----------------------------------------------------------------
    async def get(self, conn: asyncpg.Connection, query: GetLead, org: str) -> Reply:
        row = await repository.get(conn, org, query.leadId)
        if row is None:
            raise not_found("lead", query.leadId)
        return ok(LeadReply(lead=LeadView(**row)))

    async def get_many(self, conn: asyncpg.Connection, query: GetLeads, org: str) -> Reply:
        rows = await repository.get_many(conn, org, query.leadIds)
        return ok(LeadPage(leads=[LeadView(**r) for r in rows], next_cursor=None))

    async def list(self, conn: asyncpg.Connection, query: ListLeads, org: str) -> Reply:
        rows = await repository.page(conn, org, query.status, query.limit, decode_cursor(query.cursor))
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more else None
        return ok(LeadPage(leads=[LeadView(**r) for r in rows], next_cursor=cursor))

    async def history(self, conn: asyncpg.Connection, query: LeadHistory, org: str) -> Reply:
        lead = await repository.get(conn, org, query.leadId)
        if lead is None:  # another organisation's lead answers like one that does not exist
            raise not_found("lead", query.leadId)
        rows = await repository.history(conn, org, lead["id"])
        return ok(
            HistoryReply(
                history=[
                    HistoryEntry(
                        from_=r["from_status"],
                        to=r["to_status"],
                        at=r["changed_at"],
                        by=r["changed_by"],
                        command_id=r["command_id"],
                    )
                    for r in rows
                ]
            )
        )


class FollowReply(BaseModel):
    applied: bool


def encode_cursor(created_at: datetime, lead_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at.isoformat(), lead_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, UUID] | None:
    if not cursor:
        return None
    try:
        created_at, lead_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(created_at), UUID(lead_id)
    except (ValueError, TypeError, binascii.Error):
        raise invalid(
            "cursor is not one this API gave out", [{"field": "cursor", "message": "invalid cursor"}]
        ) from None


def register(service: Service, leads: LeadHandlers) -> None:
    service.command(CreateLead, leads.create, "Create a lead (phone stored as E.164). Emits leads.created.")
    service.command(
        UpdateLeadStatus, leads.update_status, "Move one lead to a status. Emits leads.status_changed when it changes."
    )
    service.command(
        BulkUpdateLeadStatus,
        leads.bulk_update_status,
        "Move many leads at once, all or nothing. One leads.status_changed per changed lead.",
    )
    for deal_event in DEAL_MOVES:
        service.event(
            deal_event,
            leads.follow_deal,
            f"Move the lead as {deal_event.TYPE} asks, when the rules allow it. Emits leads.status_changed.",
        )
    service.query(GetLead, leads.get, "One lead of the caller's organisation.")
    service.query(
        GetLeads,
        leads.get_many,
        "Internal: which of these ids are the organisation's leads (one "
        "question for many, from the other services' lead directories).",
    )
    service.query(ListLeads, leads.list, "A page of leads, stable order (created_at, id).")
    service.query(LeadHistory, leads.history, "A lead's status changes, newest first.")
