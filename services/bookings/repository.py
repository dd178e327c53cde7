"""SQL for the appointments table. Functions take a connection and never commit."""

from datetime import datetime
from uuid import UUID

import asyncpg

from shared.db import as_uuid

COLUMNS = (
    "id::text AS id, lead_id::text AS lead_id, starts_at, duration_minutes, title, status, confirmed_at, "
    "confirmed_by, notes, created_at, closed_at, closed_by, cancel_reason"
)


async def insert(
    conn: asyncpg.Connection,
    appointment_id: UUID,
    org: str,
    lead_id: str,
    starts_at: datetime,
    duration: int,
    title: str | None,
    at: datetime,
    by: str,
) -> asyncpg.Record:
    return await conn.fetchrow(
        f"INSERT INTO appointments (id, org_id, lead_id, starts_at, duration_minutes, title, created_at, created_by) "
        f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}",
        appointment_id,
        org,
        UUID(lead_id),
        starts_at,
        duration,
        title,
        at,
        by,
    )


async def get(conn: asyncpg.Connection, org: str, appointment_id: str, *, lock: bool = False) -> asyncpg.Record | None:
    ident = as_uuid(appointment_id)
    if ident is None:
        return None
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM appointments WHERE id = $1 AND org_id = $2" + (" FOR UPDATE" if lock else ""),
        ident,
        org,
    )


async def confirm(
    conn: asyncpg.Connection, appointment_id: str, at: datetime, by: str, notes: str | None
) -> asyncpg.Record:
    return await conn.fetchrow(
        f"UPDATE appointments SET status = 'confirmed', confirmed_at = $2, confirmed_by = $3, "
        f"notes = coalesce($4, notes) WHERE id = $1 RETURNING {COLUMNS}",
        UUID(appointment_id),
        at,
        by,
        notes,
    )


async def reschedule(
    conn: asyncpg.Connection, appointment_id: str, starts_at: datetime, duration: int
) -> asyncpg.Record:
    """A new time; a confirmed appointment is scheduled again: the new time must be confirmed."""
    return await conn.fetchrow(
        f"UPDATE appointments SET starts_at = $2, duration_minutes = $3, status = 'scheduled', confirmed_at = NULL, "
        f"confirmed_by = NULL WHERE id = $1 RETURNING {COLUMNS}",
        UUID(appointment_id),
        starts_at,
        duration,
    )


async def close(
    conn: asyncpg.Connection,
    appointment_id: str,
    status: str,
    at: datetime,
    by: str,
    *,
    reason: str | None = None,
    notes: str | None = None,
) -> asyncpg.Record:
    """Cancelled (with its reason), completed or no_show."""
    return await conn.fetchrow(
        f"UPDATE appointments SET status = $2, closed_at = $3, closed_by = $4, cancel_reason = $5, "
        f"notes = coalesce($6, notes) WHERE id = $1 RETURNING {COLUMNS}",
        UUID(appointment_id),
        status,
        at,
        by,
        reason,
        notes,
    )


async def open_of_lead(conn: asyncpg.Connection, org: str, lead_id: str, except_id: str) -> list[asyncpg.Record]:
    """The lead's other scheduled or confirmed appointments (few: the overlap is judged in domain.clashes)."""
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM appointments WHERE org_id = $1 AND lead_id = $2 AND id <> $3 "
        f"AND status IN ('scheduled', 'confirmed') ORDER BY starts_at, id",
        org,
        UUID(lead_id),
        UUID(except_id),
    )


async def of_lead(conn: asyncpg.Connection, org: str, lead_id: str) -> list[asyncpg.Record]:
    ident = as_uuid(lead_id)
    if ident is None:
        return []
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM appointments WHERE org_id = $1 AND lead_id = $2 ORDER BY starts_at, id", org, ident
    )


async def count(conn: asyncpg.Connection, org: str) -> int:
    return await conn.fetchval("SELECT count(*) FROM appointments WHERE org_id = $1", org)
