"""Blobs no document refers to are collected after a grace period.

    every BLOB_GC_INTERVAL_SECONDS, for each blob not put or touched within BLOB_GRACE_SECONDS:
        a live document refers to it, or one deleted within the grace period ──► kept
        otherwise ──► store.delete(sha256, older_than=cutoff)   (not if it was put again meanwhile)

The grace period covers an upload whose command is still on its way (the gateway stores the
bytes, then sends the command; retries through the delay queues take minutes, well inside
the default hour) and a document deleted a moment ago. A parked attach replayed later than
that may find its blob gone: it is refused, "upload again". Every instance of the service
may run it: two deleting one blob is one delete.
"""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from services.documents import repository
from shared import logging
from shared.blobs import BlobStore

log = logging.get("documents.collector")
InUse = Callable[[str, datetime], Awaitable[bool]]


async def collect_once(store: BlobStore, in_use: InUse, grace: timedelta, now: datetime | None = None) -> int:
    """One pass; how many blobs were removed."""
    cutoff = (now or datetime.now(UTC)) - grace
    removed = 0
    async for blob in store.list():
        if blob.modified > cutoff or await in_use(blob.sha256, cutoff):
            continue
        if await store.delete(blob.sha256, older_than=cutoff):
            removed += 1
            log.info("blob.collected", sha256=blob.sha256, size=blob.size)
    await store.sweep(cutoff)
    return removed


def in_use_by(pool: Callable[[], asyncpg.Pool]) -> InUse:
    async def in_use(sha256: str, since: datetime) -> bool:
        async with pool().acquire() as conn:
            return await repository.in_use(conn, sha256, since)

    return in_use
