"""What the presses act on: leads (through the gateway for the pipeline, straight in SQL for the
baseline) and appointments (through the gateway), each set under a fresh organisation."""

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import aiohttp
import asyncpg

from bench.driver import drive
from services.gateway.auth import issue
from tests.support.stack import TEST_SECRET

PHONE = "+14155550100"
USER = "bench-agent"


def tenant() -> tuple[str, str]:
    """A fresh organisation and a token of one of its agents."""
    org = f"bench-{uuid4().hex[:8]}"
    return org, issue(TEST_SECRET, org, USER)


async def _create(
    http: aiohttp.ClientSession, url: str, token: str, bodies: list[dict[str, Any]], concurrency: int, what: str
) -> list[dict[str, Any]]:
    """POST every body (201 expected); return the answers in the order of `bodies`."""
    jobs = [(str(i), json.dumps(body).encode()) for i, body in enumerate(bodies)]
    samples = await drive(http, url, token, jobs, concurrency)
    failed = Counter(str(s.status) for s in samples if s.status != 201)
    if failed:
        raise RuntimeError(f"seeding {what} through the gateway failed: {dict(failed)} of {len(bodies)} (expected 201)")
    samples.sort(key=lambda s: int(s.key))
    return [json.loads(s.body) for s in samples]


async def via_gateway(
    http: aiohttp.ClientSession, url: str, token: str, count: int, concurrency: int, phones: list[str] | None = None
) -> list[str]:
    """Create `count` leads with POST /api/leads (PHONE, or `phones[i]`); return their ids in creation order."""
    bodies = [{"name": f"Bench lead {i}", "phone": phones[i] if phones else PHONE} for i in range(count)]
    answers = await _create(http, f"{url}/api/leads", token, bodies, concurrency, "leads")
    return [a["lead"]["id"] for a in answers]


async def appointments_via_gateway(
    http: aiohttp.ClientSession, url: str, token: str, lead_ids: list[str], concurrency: int
) -> list[str]:
    """Book one appointment a week ahead per lead with POST /api/appointments; return their ids in that order."""
    starts_at = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0).isoformat()
    bodies = [{"leadId": lead_id, "startsAt": starts_at} for lead_id in lead_ids]
    answers = await _create(http, f"{url}/api/appointments", token, bodies, concurrency, "appointments")
    return [a["appointment"]["id"] for a in answers]


async def via_sql(database_url: str, org: str, user: str, count: int) -> list[str]:
    """Insert `count` leads in status new directly into leads.leads; return their ids."""
    now = datetime.now(UTC)
    rows = [(uuid4(), org, f"Bench lead {i}", PHONE, None, "new", now, now, user) for i in range(count)]
    conn = await asyncpg.connect(database_url)
    try:
        await conn.copy_records_to_table(
            "leads",
            schema_name="leads",
            records=rows,
            columns=[
                "id",
                "org_id",
                "name",
                "phone",
                "email",
                "status",
                "status_changed_at",
                "created_at",
                "created_by",
            ],
        )
    finally:
        await conn.close()
    return [str(r[0]) for r in rows]


async def count_status(database_url: str, lead_ids: list[str], status: str) -> int:
    """How many of `lead_ids` have `status` in the database (a check that the changes really happened)."""
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM leads.leads WHERE id = ANY($1::uuid[]) AND status = $2", lead_ids, status
        )
    finally:
        await conn.close()
