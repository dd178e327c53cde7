"""SQL for the SMS tables. Functions take a connection and never commit."""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.contracts.sms import SmsStatus
from shared.db import as_uuid

MESSAGE = (
    "id::text AS id, org_id, lead_id::text AS lead_id, command_id, to_phone, body, encoding, segments, status, "
    "provider_sid, error_code, attempt_started_at, created_at, sent_at, delivered_at"
)
TEMPLATE = "id::text AS id, name, body, created_at"


async def by_command(conn: asyncpg.Connection, org: str, command_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {MESSAGE} FROM sms_messages WHERE org_id = $1 AND command_id = $2", org, command_id
    )


async def by_sid(conn: asyncpg.Connection, sid: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {MESSAGE} FROM sms_messages WHERE provider_sid = $1 FOR UPDATE", sid)


async def insert(
    conn: asyncpg.Connection,
    sms_id: UUID,
    org: str,
    lead_id: str,
    command_id: str,
    to: str,
    body: str,
    encoding: str,
    segments: int,
) -> asyncpg.Record:
    """The row of this command; a concurrent delivery of the same command gets the one that won."""
    inserted = await conn.fetchrow(
        f"INSERT INTO sms_messages (id, org_id, lead_id, command_id, to_phone, body, encoding, segments, status) "
        f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued') ON CONFLICT (org_id, command_id) DO NOTHING "
        f"RETURNING {MESSAGE}",
        sms_id,
        org,
        UUID(lead_id),
        command_id,
        to,
        body,
        encoding,
        segments,
    )
    return inserted or await by_command(conn, org, command_id)


async def claim_attempt(conn: asyncpg.Connection, sms_id: str, seen: datetime | None, at: datetime) -> bool:
    """Start an attempt only if nobody started another since we read the row (compare and set):
    two deliveries of one command never both call the provider."""
    claimed = await conn.fetchval(
        "UPDATE sms_messages SET status = 'sending', attempt_started_at = $3 WHERE id = $1 "
        "AND attempt_started_at IS NOT DISTINCT FROM $2 AND status IN ('queued', 'sending') RETURNING true",
        UUID(sms_id),
        seen,
        at,
    )
    return bool(claimed)


async def set_status(
    conn: asyncpg.Connection,
    sms_id: str,
    status: SmsStatus,
    *,
    sid: str | None = None,
    error_code: int | None = None,
    sent_at: datetime | None = None,
    delivered_at: datetime | None = None,
) -> asyncpg.Record:
    return await conn.fetchrow(
        f"UPDATE sms_messages SET status = $2, provider_sid = coalesce($3, provider_sid), "
        f"error_code = coalesce($4, error_code), sent_at = coalesce(sent_at, $5), "
        f"delivered_at = coalesce(delivered_at, $6) WHERE id = $1 RETURNING {MESSAGE}",
        UUID(sms_id),
        status,
        sid,
        error_code,
        sent_at,
        delivered_at,
    )


async def history(conn: asyncpg.Connection, org: str, lead_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {MESSAGE} FROM sms_messages WHERE org_id = $1 AND lead_id = $2 ORDER BY created_at DESC, id DESC",
        org,
        UUID(lead_id),
    )


async def insert_template(
    conn: asyncpg.Connection, template_id: UUID, org: str, name: str, body: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"INSERT INTO sms_templates (id, org_id, name, body) VALUES ($1, $2, $3, $4) "
        f"ON CONFLICT (org_id, name) DO NOTHING RETURNING {TEMPLATE}",
        template_id,
        org,
        name,
        body,
    )


async def template(conn: asyncpg.Connection, org: str, template_id: str) -> asyncpg.Record | None:
    ident = as_uuid(template_id)
    if ident is None:
        return None
    return await conn.fetchrow(f"SELECT {TEMPLATE} FROM sms_templates WHERE id = $1 AND org_id = $2", ident, org)


async def templates(conn: asyncpg.Connection, org: str) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {TEMPLATE} FROM sms_templates WHERE org_id = $1 ORDER BY name", org)


async def sids_taken(conn: asyncpg.Connection, sms_id: str, sids: Sequence[str]) -> set[str]:
    """Which of these provider sids an SMS other than `sms_id` already holds (none of them is its lost attempt).

    Asked of every organisation's rows, and only that: the sids are the few Twilio listed for this
    SMS's own number, body and attempt window, and the answer is the sids, nothing of the rows. A sid
    is unique across organisations (a message at Twilio is one SMS row's), so a sid another
    organisation holds must not be adopted either; what another organisation sent is never read."""
    return {
        r["provider_sid"]
        for r in await conn.fetch(
            "SELECT provider_sid FROM sms_messages WHERE provider_sid = ANY($2::text[]) AND id <> $1",
            UUID(sms_id),
            list(sids),
        )
    }


async def is_opted_out(conn: asyncpg.Connection, phone: str) -> bool:
    return bool(await conn.fetchval("SELECT opted_out FROM sms_opt_outs WHERE phone = $1", phone))


async def set_opt_out(conn: asyncpg.Connection, phone: str, opted_out: bool, keyword: str) -> None:
    await conn.execute(
        "INSERT INTO sms_opt_outs (phone, opted_out, keyword) VALUES ($1, $2, $3) ON CONFLICT (phone) "
        "DO UPDATE SET opted_out = excluded.opted_out, keyword = excluded.keyword, changed_at = now()",
        phone,
        opted_out,
        keyword,
    )


async def leads_with_phone(conn: asyncpg.Connection, phone: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT lead_id::text AS lead_id, org_id FROM lead_directory WHERE phone = $1", phone)
