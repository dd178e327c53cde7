"""SQL of the campaign dispatcher (services/sms/dispatcher.py). Functions take a connection and never commit."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg


async def orgs_with_due(conn: asyncpg.Connection, now: datetime) -> list[str]:
    """Organisations with a running campaign whose targets are due."""
    return [
        r["org_id"]
        for r in await conn.fetch(
            "SELECT DISTINCT c.org_id FROM campaigns c WHERE c.status = 'running' AND EXISTS (SELECT 1 FROM "
            "campaign_targets t WHERE t.campaign_id = c.id AND t.state = 'waiting' AND t.next_at <= $1)",
            now,
        )
    ]


async def lock_pace(conn: asyncpg.Connection, org: str, now: datetime, tokens: float) -> asyncpg.Record | None:
    """The organisation's token bucket, locked (None: another instance is dispatching for it right now)."""
    await conn.execute(
        "INSERT INTO campaign_pace (org_id, tokens, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", org, tokens, now
    )
    return await conn.fetchrow("SELECT tokens, at FROM campaign_pace WHERE org_id = $1 FOR UPDATE SKIP LOCKED", org)


async def save_pace(conn: asyncpg.Connection, org: str, tokens: float, at: datetime) -> None:
    await conn.execute("UPDATE campaign_pace SET tokens = $2, at = $3 WHERE org_id = $1", org, tokens, at)


async def running(conn: asyncpg.Connection, org: str) -> list[asyncpg.Record]:
    """The organisation's running campaigns, share-locked: a pause or cancel waits for this dispatch to commit,
    so nothing is dispatched after it (a campaign being changed right now is skipped)."""
    return await conn.fetch(
        "SELECT id::text AS id, send_from, send_until, created_by FROM campaigns "
        "WHERE org_id = $1 AND status = 'running' FOR SHARE SKIP LOCKED",
        org,
    )


async def in_flight(conn: asyncpg.Connection, org: str) -> int:
    """The organisation's targets handed to the SMS service and not settled yet."""
    return await conn.fetchval(
        "SELECT count(*) FROM campaign_targets t JOIN campaigns c ON c.id = t.campaign_id "
        "WHERE c.org_id = $1 AND t.state = 'sending'",
        org,
    )


async def due(conn: asyncpg.Connection, campaign_ids: Sequence[str], now: datetime, limit: int) -> list[asyncpg.Record]:
    """Due targets, oldest first, locked: two instances never take the same one."""
    return await conn.fetch(
        "SELECT campaign_id::text AS campaign_id, lead_id::text AS lead_id, command_id, time_zone "
        "FROM campaign_targets WHERE campaign_id = ANY($1::uuid[]) AND state = 'waiting' AND next_at <= $2 "
        "ORDER BY next_at, campaign_id, lead_id LIMIT $3 FOR UPDATE SKIP LOCKED",
        list(campaign_ids),
        now,
        limit,
    )


async def defer(conn: asyncpg.Connection, rows: Sequence[tuple[str, str, datetime]]) -> None:
    """rows: (campaign_id, lead_id, next_at): in quiet hours, wait for the next allowed moment."""
    if rows:
        await conn.executemany(
            "UPDATE campaign_targets SET next_at = $3, updated_at = now() WHERE campaign_id = $1 AND lead_id = $2",
            [(UUID(c), UUID(t), at) for c, t, at in rows],
        )


async def mark_sending(conn: asyncpg.Connection, command_ids: Sequence[str], now: datetime) -> None:
    await conn.execute(
        "UPDATE campaign_targets SET state = 'sending', dispatched_at = $2, updated_at = now() "
        "WHERE command_id = ANY($1::text[])",
        list(command_ids),
        now,
    )


async def stuck(conn: asyncpg.Connection, before: datetime, limit: int) -> list[asyncpg.Record]:
    """Targets published before `before` and still sending, locked, with what the SMS side knows of their command:
    its SMS row, its stored answer (inbox), whether it was parked."""
    return await conn.fetch(
        "SELECT t.campaign_id::text AS campaign_id, t.lead_id::text AS lead_id, t.command_id, c.org_id, c.created_by, "
        "m.id::text AS sms_id, m.status AS sms_status, i.status AS reply_status, i.reply, "
        "EXISTS (SELECT 1 FROM parked p WHERE p.org_id = c.org_id AND p.message_id = t.command_id) AS parked "
        "FROM campaign_targets t JOIN campaigns c ON c.id = t.campaign_id "
        "LEFT JOIN sms_messages m ON m.org_id = c.org_id AND m.command_id = t.command_id "
        "LEFT JOIN inbox i ON i.org_id = c.org_id AND i.message_id = t.command_id "
        "WHERE t.state = 'sending' AND t.dispatched_at < $1 ORDER BY t.dispatched_at LIMIT $2 "
        "FOR UPDATE OF t SKIP LOCKED",
        before,
        limit,
    )


async def touch(conn: asyncpg.Connection, command_ids: Sequence[str], now: datetime) -> None:
    """Looked at (or published again) now: the sweep comes back to it only after another wait."""
    await conn.execute(
        "UPDATE campaign_targets SET dispatched_at = $2 WHERE command_id = ANY($1::text[])", list(command_ids), now
    )


async def open_campaigns(conn: asyncpg.Connection, paused_too: bool) -> list[str]:
    return [
        r["id"]
        for r in await conn.fetch(
            "SELECT id::text AS id FROM campaigns WHERE status = 'running' OR ($1 AND status = 'paused')", paused_too
        )
    ]


async def lock_open(conn: asyncpg.Connection, campaign_id: str) -> asyncpg.Record | None:
    """A running or paused campaign, locked for its progress (None: taken elsewhere, or closed meanwhile)."""
    return await conn.fetchrow(
        "SELECT id::text AS id, org_id, status, progress_at, progress_counts FROM campaigns "
        "WHERE id = $1 AND status IN ('running', 'paused') FOR UPDATE SKIP LOCKED",
        UUID(campaign_id),
    )


async def progressed(conn: asyncpg.Connection, campaign_id: str, at: datetime, counts: dict[str, Any]) -> None:
    await conn.execute(
        "UPDATE campaigns SET progress_at = $2, progress_counts = $3 WHERE id = $1", UUID(campaign_id), at, counts
    )
