"""Leads to change: through the gateway for the pipeline, straight in SQL for the baseline."""
import json
from collections import Counter
from datetime import UTC, datetime
from uuid import uuid4

import aiohttp
import asyncpg

from bench.driver import drive

PHONE = "+14155550100"


async def via_gateway(http: aiohttp.ClientSession, url: str, token: str, count: int, concurrency: int) -> list[str]:
    """Create `count` leads with POST /api/leads; return their ids in creation order."""
    jobs = [(str(i), json.dumps({"name": f"Bench lead {i}", "phone": PHONE}).encode()) for i in range(count)]
    samples = await drive(http, f"{url}/api/leads", token, jobs, concurrency)
    failed = Counter(str(s.status) for s in samples if s.status != 201)
    if failed:
        raise RuntimeError(f"seeding through the gateway failed: {dict(failed)} of {count} (expected 201)")
    samples.sort(key=lambda s: int(s.key))
    return [json.loads(s.body)["lead"]["id"] for s in samples]


async def via_sql(database_url: str, org: str, user: str, count: int) -> list[str]:
    """Insert `count` leads in status new directly into leads.leads; return their ids."""
    now = datetime.now(UTC)
    rows = [(uuid4(), org, f"Bench lead {i}", PHONE, None, "new", now, now, user) for i in range(count)]
    conn = await asyncpg.connect(database_url)
    try:
        await conn.copy_records_to_table(
            "leads", schema_name="leads", records=rows,
            columns=["id", "org_id", "name", "phone", "email", "status", "status_changed_at", "created_at",
                     "created_by"])
    finally:
        await conn.close()
    return [str(r[0]) for r in rows]


async def count_status(database_url: str, lead_ids: list[str], status: str) -> int:
    """How many of `lead_ids` have `status` in the database (a check that the changes really happened)."""
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM leads.leads WHERE id = ANY($1::uuid[]) AND status = $2",
                                   lead_ids, status)
    finally:
        await conn.close()
