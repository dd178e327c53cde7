"""Campaign buttons and reads: create, start (the audience resolved and recorded once), pause, resume, cancel,
get, list. The sending is the dispatcher's (dispatcher.py) and the CampaignSender's (campaign_sending.py)."""

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import uuid4

import asyncpg

from services.sms import campaign_domain as rules
from services.sms import campaign_repository as campaigns
from services.sms import clock
from services.sms.campaign_sending import CampaignSender
from shared import lead_directory
from shared.contracts.campaigns import (
    MAX_TARGETS,
    CampaignCancelled,
    CampaignChanged,
    CampaignCounts,
    CampaignCreated,
    CampaignDetail,
    CampaignList,
    CampaignPaused,
    CampaignReply,
    CampaignResumed,
    CampaignStarted,
    CampaignStatus,
    CampaignView,
    CancelCampaign,
    CreateCampaign,
    GetCampaign,
    ListCampaigns,
    PauseCampaign,
    ResumeCampaign,
    SendCampaignSms,
    StartCampaign,
    TargetState,
    TargetView,
)
from shared.contracts.envelope import Event, Reply
from shared.contracts.leads import LeadStatus
from shared.db import as_uuid
from shared.messages import Effect, Meta, Outcome, ok
from shared.problems import invalid, not_found
from shared.service import Service

SHOWN_UNKNOWN = 100  # unknown leads named in a refusal's errors (all are counted in its detail)
VIEW_FIELDS = (
    "id",
    "name",
    "template_id",
    "status",
    "audience",
    "send_from",
    "send_until",
    "created_at",
    "started_at",
    "finished_at",
)


def view(row: asyncpg.Record, counts: CampaignCounts) -> CampaignView:
    return CampaignView(**{k: row[k] for k in VIEW_FIELDS}, counts=counts)


async def current(conn: asyncpg.Connection, row: asyncpg.Record) -> CampaignView:
    return view(row, rules.counts((await campaigns.counts(conn, [row["id"]]))[row["id"]]))


def changed(kind: type[CampaignChanged], campaign: CampaignView, meta: Meta) -> Event:
    return meta.event(
        kind(campaignId=campaign.id, status=campaign.status, counts=campaign.counts, at=clock.now(), by=meta.user_id)
    )


class CampaignHandlers:
    def __init__(self, directory: lead_directory.Directory):
        self.directory = directory

    async def create(self, conn: asyncpg.Connection, cmd: CreateCampaign, meta: Meta) -> Outcome:
        if not await campaigns.template_exists(conn, meta.org_id, cmd.templateId):
            raise not_found("template", cmd.templateId)
        audience = (
            {"status": str(cmd.status)}
            if cmd.status is not None
            else {"leadIds": await self._leads(conn, meta.org_id, cmd.leadIds or [])}
        )
        row = await campaigns.insert(
            conn, uuid4(), meta.org_id, cmd.name, cmd.templateId, audience, cmd.sendFrom, cmd.sendUntil, meta.user_id
        )
        campaign = view(row, rules.counts({}))
        return Outcome(ok(CampaignReply(campaign=campaign), 201), [changed(CampaignCreated, campaign, meta)])

    async def _leads(self, conn: asyncpg.Connection, org: str, given: list[str]) -> list[str]:
        """The audience's leads, each once (canonical spelling); 422 naming the ones that are not the org's.
        One query of the projection for all of them; those it lacks are asked about a page at a time, outside
        the transaction (`Directory.find_many` raises NeedsLookup): never a question per id, never one that
        holds the transaction (and every SMS press batched with it) while it waits."""
        position: dict[str, int] = {}
        for i, raw in enumerate(given):
            position.setdefault(str(as_uuid(raw) or raw), i)
        known = await self.directory.find_many(conn, org, [i for i in position if as_uuid(i)])
        unknown = [i for i in position if i not in known]
        if unknown:
            raise invalid(
                f"{len(unknown)} of the leads are not this organisation's: {', '.join(unknown[:10])}"
                + (f" (the first {SHOWN_UNKNOWN} are listed in errors)" if len(unknown) > SHOWN_UNKNOWN else ""),
                [{"field": f"leadIds.{position[i]}", "message": "no such lead"} for i in unknown[:SHOWN_UNKNOWN]],
            )
        return list(position)

    async def pause(self, conn: asyncpg.Connection, cmd: PauseCampaign, meta: Meta) -> Outcome:
        return await self._move(conn, cmd.campaignId, meta, rules.check_pause, CampaignStatus.paused, CampaignPaused)

    async def resume(self, conn: asyncpg.Connection, cmd: ResumeCampaign, meta: Meta) -> Outcome:
        return await self._move(conn, cmd.campaignId, meta, rules.check_resume, CampaignStatus.running, CampaignResumed)

    async def cancel(self, conn: asyncpg.Connection, cmd: CancelCampaign, meta: Meta) -> Outcome:
        return await self._move(
            conn, cmd.campaignId, meta, rules.check_cancel, CampaignStatus.cancelled, CampaignCancelled
        )

    async def _move(
        self,
        conn: asyncpg.Connection,
        campaign_id: str,
        meta: Meta,
        check: Callable[[CampaignStatus, str], bool],
        to: CampaignStatus,
        kind: type[CampaignChanged],
    ) -> Outcome:
        """Waits for a dispatch under way (its share lock): nothing is dispatched after the answer."""
        row = await campaigns.get(conn, meta.org_id, campaign_id, lock=True)
        if row is None:
            raise not_found("campaign", campaign_id)
        if not check(CampaignStatus(row["status"]), campaign_id):
            return Outcome(ok(CampaignReply(campaign=await current(conn, row))))
        if to == CampaignStatus.cancelled:
            await campaigns.skip_waiting(conn, row["id"], rules.Skipped.cancelled)
        campaign = await current(conn, await campaigns.set_status(conn, row["id"], to, clock.now()))
        return Outcome(ok(CampaignReply(campaign=campaign)), [changed(kind, campaign, meta)])

    # Queries -----------------------------------------------------------------------
    async def get(self, conn: asyncpg.Connection, query: GetCampaign, org: str) -> Reply:
        row = await campaigns.get(conn, org, query.campaignId)
        if row is None:
            raise not_found("campaign", query.campaignId)
        after = as_uuid(query.after) if query.after else None
        if query.after and after is None:
            raise invalid("after must be a lead id this API gave out", [{"field": "after", "message": "not a lead id"}])
        rows = await campaigns.page(conn, row["id"], after, query.limit)
        more, rows = len(rows) > query.limit, rows[: query.limit]
        return ok(
            CampaignDetail(
                campaign=await current(conn, row),
                targets=[TargetView(**r) for r in rows],
                next_after=rows[-1]["lead_id"] if more else None,
            )
        )

    async def list(self, conn: asyncpg.Connection, query: ListCampaigns, org: str) -> Reply:
        after = as_uuid(query.after) if query.after else None
        rows = await campaigns.of_org(conn, org, after, query.limit + 1) if after or not query.after else None
        if rows is None:
            raise invalid(
                "after must be a campaign id this API gave out",
                [{"field": "after", "message": "not a campaign of this organisation"}],
            )
        more, rows = len(rows) > query.limit, rows[: query.limit]
        counts = await campaigns.counts(conn, [r["id"] for r in rows])
        return ok(
            CampaignList(
                campaigns=[view(r, rules.counts(counts[r["id"]])) for r in rows],
                next_after=rows[-1]["id"] if more else None,
            )
        )


Audience = list[dict[str, Any]] | None  # a status audience's leads, resolved (None: nothing to resolve)


class Start(Effect[StartCampaign, Audience]):
    """`perform` resolves a status audience outside the transaction (pages of the leads service's list);
    `record` writes one target per lead with its first moment (quiet hours), in the start's transaction."""

    def __init__(self, directory: lead_directory.Directory):
        self.directory = directory

    async def perform(self, pool: asyncpg.Pool, cmd: StartCampaign, meta: Meta) -> Audience:
        async with pool.acquire() as conn:
            row = await campaigns.get(conn, meta.org_id, cmd.campaignId)
        if row is None:
            raise not_found("campaign", cmd.campaignId)
        status = row["audience"].get("status")
        if row["status"] != CampaignStatus.draft or status is None:
            return None  # started already, or a list of leads: nothing to ask
        leads = await self.directory.with_status(meta.org_id, LeadStatus(status), MAX_TARGETS)
        if leads is None:
            raise invalid(f"more than {MAX_TARGETS} leads are {status}: a campaign reaches at most {MAX_TARGETS}")
        return leads

    async def record(self, conn: asyncpg.Connection, cmd: StartCampaign, meta: Meta, result: Audience) -> Outcome:
        row = await campaigns.get(conn, meta.org_id, cmd.campaignId, lock=True)
        if row is None:
            raise not_found("campaign", cmd.campaignId)
        if not rules.check_start(CampaignStatus(row["status"]), cmd.campaignId):
            return Outcome(ok(CampaignReply(campaign=await current(conn, row))))  # a second start changes nothing
        if result is None and "status" in row["audience"]:
            raise RuntimeError("the audience was not resolved: start again")  # transient: retried
        leads = result if result is not None else await self._listed(conn, meta.org_id, row["audience"]["leadIds"])
        await lead_directory.remember_all(conn, meta.org_id, [lead for lead in leads if lead.get("name")])
        await campaigns.insert_targets(conn, row["id"], targets(row, leads, clock.now()))
        campaign = await current(conn, await campaigns.set_status(conn, row["id"], CampaignStatus.running, clock.now()))
        return Outcome(ok(CampaignReply(campaign=campaign)), [changed(CampaignStarted, campaign, meta)])

    async def _listed(self, conn: asyncpg.Connection, org: str, lead_ids: list[str]) -> list[dict[str, Any]]:
        """The listed leads as the projection knows them (each was checked at create); one it forgot: no phone."""
        known = {r["lead_id"]: r for r in await campaigns.projected(conn, org, lead_ids)}
        return [
            {"id": i, "phone": known[i]["phone"], "timeZone": known[i]["time_zone"]} if i in known else {"id": i}
            for i in lead_ids
        ]


def targets(campaign: asyncpg.Record, leads: list[dict[str, Any]], now: datetime) -> list[tuple[Any, ...]]:
    """(lead_id, command_id, time_zone, state, next_at, reason) per lead: waiting from its first allowed moment."""
    rows: list[tuple[Any, ...]] = []
    for lead in leads:
        command_id = rules.send_id(campaign["id"], lead["id"])
        if not lead.get("phone"):
            rows.append(
                (lead["id"], command_id, rules.FALLBACK_ZONE, TargetState.skipped, None, rules.Skipped.not_found)
            )
            continue
        zone = rules.zone_name(lead.get("timeZone"), lead["phone"])
        at = rules.next_allowed(now, zone, campaign["send_from"], campaign["send_until"])
        rows.append((lead["id"], command_id, zone, TargetState.waiting, at, None))
    return rows


def register(service: Service, directory: lead_directory.Directory, sender: CampaignSender) -> None:
    handlers = CampaignHandlers(directory)
    service.command(CreateCampaign, handlers.create, "Create a campaign (draft). Emits campaigns.created.")
    service.effect(
        StartCampaign,
        Start(directory),
        "Resolve and record the audience (one target per lead), then send. Emits campaigns.started; "
        "a second start changes nothing.",
    )
    service.command(PauseCampaign, handlers.pause, "Stop dispatching a campaign's sends. Emits campaigns.paused.")
    service.command(ResumeCampaign, handlers.resume, "Dispatch a paused campaign again. Emits campaigns.resumed.")
    service.command(
        CancelCampaign,
        handlers.cancel,
        "Nothing more is sent (waiting targets are skipped). Emits campaigns.cancelled.",
    )
    service.effect(
        SendCampaignSms,
        sender,
        "One campaign target's SMS (published by the dispatcher; one SMS per (campaign, lead)). "
        "Emits sms.sent / sms.failed.",
    )
    service.query(GetCampaign, handlers.get, "A campaign with its counts and a page of per-lead outcomes.")
    service.query(ListCampaigns, handlers.list, "The organisation's campaigns, newest first.")
