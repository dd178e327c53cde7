"""SQL for the leads tables. Functions take a connection and never commit."""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.db import as_uuid

COLUMNS = 'id::text AS id, name, phone, email, status, status_changed_at, created_at, time_zone AS "timeZone"'


def canonical(value: str) -> str | None:
    """The one spelling of a lead id (lower case, hyphens); None when it is no uuid at all."""
    ident = as_uuid(value)
    return str(ident) if ident else None


async def insert(
    conn: asyncpg.Connection,
    lead_id: UUID,
    org: str,
    name: str,
    phone: str,
    email: str | None,
    at: datetime,
    by: str,
    time_zone: str | None = None,
) -> asyncpg.Record:
    return await conn.fetchrow(
        f"INSERT INTO leads (id, org_id, name, phone, email, status, status_changed_at, created_at, created_by, "
        f"time_zone) VALUES ($1, $2, $3, $4, $5, 'new', $6, $6, $7, $8) RETURNING {COLUMNS}",
        lead_id,
        org,
        name,
        phone,
        email,
        at,
        by,
        time_zone,
    )


async def get(conn: asyncpg.Connection, org: str, lead_id: str) -> asyncpg.Record | None:
    ident = as_uuid(lead_id)
    if ident is None:
        return None
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM leads WHERE id = $1 AND org_id = $2", ident, org)


async def get_many(conn: asyncpg.Connection, org: str, lead_ids: Sequence[str]) -> list[asyncpg.Record]:
    """Those of `lead_ids` that are leads of `org` (ids that cannot be one name nothing)."""
    idents = [ident for i in lead_ids if (ident := as_uuid(i)) is not None]
    return await conn.fetch(f"SELECT {COLUMNS} FROM leads WHERE id = ANY($1::uuid[]) AND org_id = $2", idents, org)


async def lock_statuses(conn: asyncpg.Connection, org: str, lead_ids: Sequence[str]) -> dict[str, asyncpg.Record]:
    """Lock the leads (in id order, so concurrent bulk changes cannot deadlock); their id, status and change time."""
    idents = [u for u in map(as_uuid, lead_ids) if u is not None]
    rows = await conn.fetch(
        "SELECT id::text AS id, status, status_changed_at FROM leads WHERE id = ANY($1::uuid[]) AND org_id = $2 "
        "ORDER BY id FOR UPDATE",
        idents,
        org,
    )
    return {r["id"]: r for r in rows}


async def set_status(
    conn: asyncpg.Connection, org: str, lead_ids: Sequence[str], status: str, at: datetime, by: str, command_id: str
) -> None:
    """Change the status and write one history row per lead, in one statement."""
    await conn.execute(
        "WITH before AS (SELECT id, status FROM leads WHERE id = ANY($1::uuid[]) AND org_id = $2), "
        "changed AS (UPDATE leads SET status = $3, status_changed_at = $4 FROM before "
        "            WHERE leads.id = before.id RETURNING leads.id, before.status AS from_status) "
        "INSERT INTO lead_status_history (lead_id, org_id, from_status, to_status, changed_at, changed_by, command_id) "
        "SELECT id, $2, from_status, $3, $4, $5, $6 FROM changed",
        [UUID(i) for i in lead_ids],
        org,
        status,
        at,
        by,
        command_id,
    )


async def page(
    conn: asyncpg.Connection, org: str, status: str | None, limit: int, after: tuple[datetime, UUID] | None
) -> list[asyncpg.Record]:
    """Stable order: (created_at, id). Fetches one more row than asked to know whether a next page exists."""
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM leads WHERE org_id = $1 AND ($2::text IS NULL OR status = $2) "
        f"AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4::uuid)) ORDER BY created_at, id LIMIT $5",
        org,
        status,
        after[0] if after else None,
        after[1] if after else None,
        limit + 1,
    )


async def history(conn: asyncpg.Connection, org: str, lead_id: str) -> list[asyncpg.Record]:
    """A lead's status changes, newest first (one statement writes a bulk change's rows: id breaks the tie)."""
    return await conn.fetch(
        "SELECT from_status, to_status, changed_at, changed_by, command_id FROM lead_status_history "
        "WHERE lead_id = $1 AND org_id = $2 ORDER BY changed_at DESC, id DESC",
        UUID(lead_id),
        org,
    )
