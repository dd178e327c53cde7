"""SQL for campaigns and their targets. Functions take a connection and never commit."""

from collections.abc import Sequence
from datetime import datetime, time
from typing import Any
from uuid import UUID

import asyncpg

from services.sms.campaign_domain import Skipped
from shared.contracts.campaigns import CampaignStatus, TargetState
from shared.db import as_uuid

CAMPAIGN = (
    "id::text AS id, org_id, name, template_id::text AS template_id, status, audience, send_from, send_until, "
    "created_by, created_at, started_at, finished_at, progress_at, progress_counts"
)
TARGET = "lead_id::text AS lead_id, state, next_at, sms_id::text AS sms_id, reason, updated_at"


# Campaigns -----------------------------------------------------------------------
async def insert(
    conn: asyncpg.Connection,
    campaign_id: UUID,
    org: str,
    name: str,
    template_id: str,
    audience: dict[str, Any],
    send_from: time,
    send_until: time,
    by: str,
) -> asyncpg.Record:
    return await conn.fetchrow(
        f"INSERT INTO campaigns (id, org_id, name, template_id, status, audience, send_from, send_until, created_by) "
        f"VALUES ($1, $2, $3, $4, 'draft', $5, $6, $7, $8) RETURNING {CAMPAIGN}",
        campaign_id,
        org,
        name,
        UUID(template_id),
        audience,
        send_from,
        send_until,
        by,
    )


async def get(conn: asyncpg.Connection, org: str, campaign_id: str, *, lock: bool = False) -> asyncpg.Record | None:
    ident = as_uuid(campaign_id)
    if ident is None:
        return None
    return await conn.fetchrow(
        f"SELECT {CAMPAIGN} FROM campaigns WHERE id = $1 AND org_id = $2" + (" FOR UPDATE" if lock else ""), ident, org
    )


async def set_status(
    conn: asyncpg.Connection, campaign_id: str, status: CampaignStatus, at: datetime
) -> asyncpg.Record:
    """The new status; a start stamps started_at, completing or cancelling finished_at."""
    return await conn.fetchrow(
        f"UPDATE campaigns SET status = $2, "
        f"started_at = CASE WHEN $2 = 'running' THEN coalesce(started_at, $3) ELSE started_at END, "
        f"finished_at = CASE WHEN $2 IN ('completed', 'cancelled') THEN $3 ELSE finished_at END "
        f"WHERE id = $1 RETURNING {CAMPAIGN}",
        UUID(campaign_id),
        status,
        at,
    )


async def of_org(conn: asyncpg.Connection, org: str, after: UUID | None, limit: int) -> list[asyncpg.Record] | None:
    """Newest first, `limit` of them after campaign `after` (None: from the newest); None when `after` is not
    a campaign of the organisation."""
    if after is not None and not await conn.fetchval(
        "SELECT true FROM campaigns WHERE id = $1 AND org_id = $2", after, org
    ):
        return None
    return await conn.fetch(
        f"SELECT {CAMPAIGN} FROM campaigns WHERE org_id = $1 AND ($2::uuid IS NULL OR (created_at, id) < "
        "(SELECT created_at, id FROM campaigns WHERE id = $2)) ORDER BY created_at DESC, id DESC LIMIT $3",
        org,
        after,
        limit,
    )


async def counts(conn: asyncpg.Connection, campaign_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Targets by state, per campaign."""
    rows = await conn.fetch(
        "SELECT campaign_id::text AS id, state, count(*) AS n FROM campaign_targets "
        "WHERE campaign_id = ANY($1::uuid[]) GROUP BY campaign_id, state",
        list(campaign_ids),
    )
    found: dict[str, dict[str, int]] = {i: {} for i in campaign_ids}
    for r in rows:
        found[r["id"]][r["state"]] = r["n"]
    return found


async def template_exists(conn: asyncpg.Connection, org: str, template_id: str) -> bool:
    ident = as_uuid(template_id)
    return ident is not None and bool(
        await conn.fetchval("SELECT true FROM sms_templates WHERE id = $1 AND org_id = $2", ident, org)
    )


# Targets -------------------------------------------------------------------------
async def projected(conn: asyncpg.Connection, org: str, lead_ids: Sequence[str]) -> list[asyncpg.Record]:
    """The leads of `org` among `lead_ids` that the projection knows: id, phone, own time zone."""
    return await conn.fetch(
        "SELECT lead_id::text AS lead_id, phone, time_zone FROM lead_directory "
        "WHERE org_id = $1 AND lead_id = ANY($2::uuid[])",
        org,
        list(lead_ids),
    )


async def insert_targets(conn: asyncpg.Connection, campaign_id: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """rows: (lead_id, command_id, time_zone, state, next_at, reason); a target already there stays as it is."""
    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    await conn.execute(
        "INSERT INTO campaign_targets (campaign_id, lead_id, command_id, time_zone, state, next_at, reason) "
        "SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[]) "
        "ON CONFLICT DO NOTHING",
        UUID(campaign_id),
        *map(list, columns),
    )


async def page(conn: asyncpg.Connection, campaign_id: str, after: UUID | None, limit: int) -> list[asyncpg.Record]:
    """Targets by lead id, one more than asked (is there a next page?)."""
    return await conn.fetch(
        f"SELECT {TARGET} FROM campaign_targets WHERE campaign_id = $1 "
        f"AND ($2::uuid IS NULL OR lead_id > $2) ORDER BY lead_id LIMIT $3",
        UUID(campaign_id),
        after,
        limit + 1,
    )


async def skip_waiting(conn: asyncpg.Connection, campaign_id: str, reason: Skipped) -> None:
    await conn.execute(
        "UPDATE campaign_targets SET state = 'skipped', reason = $2, next_at = NULL, updated_at = now() "
        "WHERE campaign_id = $1 AND state = 'waiting'",
        UUID(campaign_id),
        reason,
    )


async def for_send(conn: asyncpg.Connection, org: str, campaign_id: str, lead_id: str) -> asyncpg.Record | None:
    """A target about to be sent, with its campaign's status and template."""
    campaign, lead = as_uuid(campaign_id), as_uuid(lead_id)
    if campaign is None or lead is None:
        return None
    return await conn.fetchrow(
        "SELECT t.state, t.command_id, c.status, c.template_id::text AS template_id FROM campaign_targets t "
        "JOIN campaigns c ON c.id = t.campaign_id WHERE t.campaign_id = $1 AND t.lead_id = $2 AND c.org_id = $3",
        campaign,
        lead,
        org,
    )


async def settle(
    conn: asyncpg.Connection,
    org: str,
    campaign_id: str,
    lead_id: str,
    state: TargetState,
    sms_id: str | None,
    reason: str | None,
) -> None:
    """Record a target's outcome (once: a target already settled keeps its first)."""
    campaign, lead = as_uuid(campaign_id), as_uuid(lead_id)
    if campaign is None or lead is None:
        return
    await conn.execute(
        "UPDATE campaign_targets t SET state = $4, sms_id = $5, reason = $6, next_at = NULL, updated_at = now() "
        "FROM campaigns c WHERE c.id = t.campaign_id AND c.org_id = $3 AND t.campaign_id = $1 AND t.lead_id = $2 "
        "AND t.state IN ('waiting', 'sending')",
        campaign,
        lead,
        org,
        state,
        as_uuid(sms_id or ""),
        reason,
    )


async def back_to_waiting(conn: asyncpg.Connection, command_id: str, at: datetime) -> None:
    """A send given up for now (parked): its target waits again, to be published again from `at`."""
    await conn.execute(
        "UPDATE campaign_targets SET state = 'waiting', next_at = $2, parks = parks + 1, "
        "updated_at = now() WHERE command_id = $1 AND state = 'sending'",
        command_id,
        at,
    )
