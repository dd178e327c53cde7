"""SQL for the documents table. Functions take a connection and never commit."""

from datetime import datetime
from uuid import UUID

import asyncpg

from shared.db import as_uuid

COLUMNS = (
    "id::text AS id, lead_id::text AS lead_id, filename, content_type, size, sha256, created_at, created_by, deleted_at"
)


async def insert(
    conn: asyncpg.Connection,
    document_id: UUID,
    org: str,
    lead_id: str,
    sha256: str,
    size: int,
    content_type: str,
    filename: str,
    at: datetime,
    by: str,
) -> asyncpg.Record | None:
    """The new document; None when the lead has a live one of these bytes already (see `live_of_hash`)."""
    return await conn.fetchrow(
        f"INSERT INTO documents (id, org_id, lead_id, sha256, size, content_type, filename, created_at, created_by) "
        f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        f"ON CONFLICT (org_id, lead_id, sha256) WHERE deleted_at IS NULL DO NOTHING RETURNING {COLUMNS}",
        document_id,
        org,
        UUID(lead_id),
        sha256,
        size,
        content_type,
        filename,
        at,
        by,
    )


async def live_of_hash(conn: asyncpg.Connection, org: str, lead_id: str, sha256: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM documents WHERE org_id = $1 AND lead_id = $2 AND sha256 = $3 AND deleted_at IS NULL",
        org,
        UUID(lead_id),
        sha256,
    )


async def get(conn: asyncpg.Connection, org: str, document_id: str, *, lock: bool = False) -> asyncpg.Record | None:
    """The organisation's document, deleted or not (`deleted_at` says)."""
    ident = as_uuid(document_id)
    if ident is None:
        return None
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM documents WHERE id = $1 AND org_id = $2" + (" FOR UPDATE" if lock else ""), ident, org
    )


async def delete(conn: asyncpg.Connection, document_id: str, at: datetime, by: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"UPDATE documents SET deleted_at = $2, deleted_by = $3 WHERE id = $1 RETURNING {COLUMNS}",
        UUID(document_id),
        at,
        by,
    )


async def of_lead(conn: asyncpg.Connection, org: str, lead_id: str) -> list[asyncpg.Record]:
    ident = as_uuid(lead_id)
    if ident is None:
        return []
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM documents WHERE org_id = $1 AND lead_id = $2 "
        f"AND deleted_at IS NULL ORDER BY created_at, id",
        org,
        ident,
    )


async def in_use(conn: asyncpg.Connection, sha256: str, since: datetime) -> bool:
    """A document of any organisation refers to these bytes, or did until after `since`."""
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM documents WHERE sha256 = $1 AND (deleted_at IS NULL OR deleted_at > $2))",
        sha256,
        since,
    )
