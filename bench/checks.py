"""Waiting for the services to catch up, and what the database says happened.

Events a service consumes (leads.created for bookings and sms, appointments.confirmed
for sms) are handled after the press that caused them was answered. Each phase waits
until they are handled (their rows are in that service's inbox) before the next one
starts, so that no phase is measured while another's leftovers still run.
"""

import asyncio
import time
from typing import Any

import asyncpg

PROJECTIONS = ("bookings", "sms")  # the services that keep a projection of leads


async def wait_count(database_url: str, query: str, args: list[Any], expected: int, timeout: float) -> int:
    """Poll the count `query` until it reaches `expected` (at most `timeout` s); return the last count."""
    deadline = time.monotonic() + timeout
    conn = await asyncpg.connect(database_url)
    try:
        while True:
            count = await conn.fetchval(query, *args)
            if count >= expected or time.monotonic() > deadline:
                return count
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def wait_handled(
    database_url: str, service: str, org: str, event_type: str, expected: int, timeout: float
) -> None:
    """Wait until `service` handled `expected` events of `event_type` of `org`; fail after `timeout` s."""
    query = f"SELECT count(*) FROM {service}.inbox WHERE org_id = $1 AND command = $2"
    handled = await wait_count(database_url, query, [org, event_type], expected, timeout)
    if handled < expected:
        raise RuntimeError(f"{service} handled {handled} of {expected} {event_type} events within {timeout:g} s")


async def wait_projected(database_url: str, org: str, count: int, timeout: float) -> None:
    """Wait until bookings and sms both took in the `count` leads.created events of `org`."""
    for service in PROJECTIONS:
        await wait_handled(database_url, service, org, "leads.created", count, timeout)


async def confirmed(database_url: str, appointment_ids: list[str]) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM bookings.appointments WHERE id = ANY($1::uuid[]) AND status = 'confirmed'",
            appointment_ids,
        )
    finally:
        await conn.close()


async def sms_statuses(database_url: str, org: str, lead_ids: list[str], timeout: float) -> dict[str, int]:
    """The SMS rows of these leads by status, once all are delivered (status callbacks handled) or after `timeout` s."""
    await wait_count(
        database_url,
        "SELECT count(*) FROM sms.sms_messages WHERE org_id = $1 "
        "AND lead_id = ANY($2::uuid[]) AND status = 'delivered'",
        [org, lead_ids],
        len(lead_ids),
        timeout,
    )
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT status, count(*) AS n FROM sms.sms_messages WHERE org_id = $1 "
            "AND lead_id = ANY($2::uuid[]) GROUP BY status ORDER BY status",
            org,
            lead_ids,
        )
    finally:
        await conn.close()
    return {r["status"]: r["n"] for r in rows}
