"""PostgreSQL access: one pool per process, explicit transactions, migrations.

Each service owns one PostgreSQL schema (named after the service) and reaches only
it: the pool's search_path is that schema. Repositories take a connection and never
open or commit a transaction; `transaction()` is the only place that does.

Migrations are versioned SQL files, applied at start under an advisory lock and
recorded in `schema_migrations`, so several instances starting at once are safe:
the first applies, the others wait and then find nothing left to do.
"""

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from uuid import UUID

import asyncpg

from shared import logging

SHARED_MIGRATIONS = Path(__file__).parent / "migrations"
# What a query raises when PostgreSQL is away, refuses, or a kept connection broke. InternalClientError: asyncpg's
# own state gone wrong on a kept connection ("another operation is in progress", after a query it gave up on
# under load): broken like any other, replaced, never a 500.
ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, TimeoutError)
log = logging.get("db")


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(
    url: str, schema: str, *, size: int = 10, lock_timeout_ms: int = 2000, statement_timeout_ms: int = 10000
) -> asyncpg.Pool:
    await ensure_schema(url, schema)
    return await asyncpg.create_pool(
        url,
        min_size=1,
        max_size=size,
        init=_init_connection,
        server_settings={
            "search_path": schema,
            "lock_timeout": str(lock_timeout_ms),
            "statement_timeout": str(statement_timeout_ms),
            "application_name": schema,
        },
    )


async def ensure_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    except asyncpg.UniqueViolationError:
        pass  # another instance created it at the same moment
    finally:
        await conn.close()


def as_uuid(value: str) -> UUID | None:
    """An id from outside; None when it cannot be one (it then names nothing: not found, never a 500)."""
    try:
        return UUID(value)
    except ValueError:
        return None


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """Commit when the block ends normally, roll back when it raises."""
    async with pool.acquire() as conn, conn.transaction():
        yield conn


async def migrate(pool: asyncpg.Pool, schema: str, folders: Sequence[Path]) -> list[str]:
    """Apply the SQL files of `folders` (shared ones first) not yet applied."""
    files = [(f"{folder.parent.name}/{path.name}", path) for folder in folders for path in sorted(folder.glob("*.sql"))]
    applied_now = []
    async with pool.acquire() as conn:
        # One lock per schema: instances of one service serialise, services don't. The pool's lock and
        # statement timeouts are for requests: an instance waits for another's migration as long as it takes,
        # and a migration (an index on a large table) is not cut off (both restored below).
        await conn.execute("SET lock_timeout = 0; SET statement_timeout = 0")
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"migrations:{schema}")
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, path in files:
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
                applied_now.append(version)
                log.info("db.migration_applied", schema=schema, version=version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"migrations:{schema}")
            await conn.execute("RESET lock_timeout; RESET statement_timeout")
    return applied_now
