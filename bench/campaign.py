"""An SMS campaign of `--campaign-leads` leads (1,000) through the SMS service and the Twilio sandbox.

The leads get distinct numbers (so the sandbox can say each got exactly one SMS), a template, a campaign
of them (POST /api/campaigns, then /start), and the run waits until the campaign is completed. Figures:
the time from the start to the last send, sends per second over that time against the configured rate,
and the SMS the sandbox accepted per number (duplicates, missing).

The stack runs campaigns at CAMPAIGN_RATE sends a second per organisation (SMS_CAMPAIGN_RATE_PER_SECOND,
set by bench.processes; the default is 5): high, so that the section takes seconds, not minutes.
"""

import argparse
import asyncio
import time
from collections import Counter
from datetime import datetime
from typing import Any
from uuid import UUID

import aiohttp
import asyncpg

from bench import checks, seed
from bench.driver import client

CAMPAIGN_RATE = 200
TEMPLATE = "Hi {{first_name}}, our spring offer is here."


def phones(count: int) -> list[str]:
    """Distinct valid US numbers (San Francisco), one per lead."""
    return [f"+1415{300 + i // 10_000}{i % 10_000:04d}" for i in range(count)]


async def _post(
    http: aiohttp.ClientSession, url: str, token: str, body: dict[str, Any], expected: int
) -> dict[str, Any]:
    async with http.post(url, json=body, headers={"Authorization": f"Bearer {token}"}) as response:
        answer = await response.json()
        if response.status != expected:
            raise RuntimeError(f"POST {url} answered {response.status}: {answer}")
        return answer


async def _campaign(http: aiohttp.ClientSession, url: str, token: str, campaign_id: str) -> dict[str, Any]:
    async with http.get(
        f"{url}/api/campaigns/{campaign_id}?limit=1", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        return (await response.json())["campaign"]


async def measure(url: str, sandbox_url: str, database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    org, token = seed.tenant()
    numbers = phones(args.campaign_leads)
    async with client(args.concurrency, args.request_timeout) as http:
        leads = await seed.via_gateway(http, url, token, args.campaign_leads, args.concurrency, numbers)
        await checks.wait_handled(database_url, "sms", org, "leads.created", len(leads), args.event_timeout)
        template = await _post(http, f"{url}/api/sms/templates", token, {"name": "bench", "body": TEMPLATE}, 201)
        campaign = (
            await _post(
                http,
                f"{url}/api/campaigns",
                token,
                {
                    "name": "bench",
                    "templateId": template["template"]["id"],
                    "leadIds": leads,
                    "sendFrom": "00:00",
                    "sendUntil": "23:59:59",
                },
                201,
            )
        )["campaign"]  # no quiet hours in a bench
        pressed = time.monotonic()
        await _post(http, f"{url}/api/campaigns/{campaign['id']}/start", token, {}, 200)
        deadline = pressed + args.event_timeout + args.campaign_leads / CAMPAIGN_RATE
        while (state := await _campaign(http, url, token, campaign["id"]))["status"] != "completed":
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    first, last, sent = await _sent_window(database_url, org)
    started = datetime.fromisoformat(state["started_at"])
    span = (last - started).total_seconds() if last else None
    dispatched = await _dispatch_span(database_url, campaign["id"], started)
    accepted = await _accepted(sandbox_url, set(numbers))
    return {
        "leads": args.campaign_leads,
        "rate": CAMPAIGN_RATE,
        "status": state["status"],
        "counts": state["counts"],
        "start_to_last_send_s": span,
        "first_to_last_send_s": (last - first).total_seconds() if last else None,
        "sends_per_s": sent / span if span else None,
        "sms_sent": sent,
        "dispatched_per_s": args.campaign_leads / dispatched if dispatched else None,
        "duplicates": sum(n - 1 for n in accepted.values() if n > 1),
        "missing": len(numbers) - len(accepted),
    }


async def _sent_window(database_url: str, org: str) -> tuple[Any, Any, int]:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT min(sent_at) AS first, max(sent_at) AS last, count(sent_at) AS n "
            "FROM sms.sms_messages WHERE org_id = $1",
            org,
        )
    finally:
        await conn.close()
    return row["first"], row["last"], row["n"]


async def _dispatch_span(database_url: str, campaign_id: str, started: datetime) -> float | None:
    """Seconds from the start to the last target handed to the SMS service (the rate limit's own pace)."""
    conn = await asyncpg.connect(database_url)
    try:
        last = await conn.fetchval(
            "SELECT max(dispatched_at) FROM sms.campaign_targets WHERE campaign_id = $1", UUID(campaign_id)
        )
    finally:
        await conn.close()
    return (last - started).total_seconds() if last else None


async def _accepted(sandbox_url: str, numbers: set[str]) -> Counter[str]:
    async with aiohttp.ClientSession() as http, http.get(f"{sandbox_url}/_sandbox/messages") as response:
        messages = (await response.json())["messages"]
    return Counter(m["to"] for m in messages if m["to"] in numbers)


def failed(c: dict[str, Any] | None) -> bool:
    return c is not None and (c["status"] != "completed" or c["duplicates"] > 0 or c["missing"] > 0)


def render(c: dict[str, Any] | None) -> list[str]:
    if c is None:
        return ["", "campaign: skipped (--no-campaign)"]
    counts = ", ".join(f"{k} {v}" for k, v in c["counts"].items())
    span = "-" if c["start_to_last_send_s"] is None else f"{c['start_to_last_send_s']:.2f} s"
    rate = "-" if c["sends_per_s"] is None else f"{c['sends_per_s']:.1f}"
    handed = "-" if c["dispatched_per_s"] is None else f"{c['dispatched_per_s']:.1f}"
    return [
        "",
        f"SMS campaign of {c['leads']} leads through the Twilio sandbox, at a configured rate of "
        f"{c['rate']} sends/s (SMS_CAMPAIGN_RATE_PER_SECOND; the default is 5)",
        f"campaign {c['status']}: {counts}",
        f"start -> last send {span}: {rate} sends/s against the configured {c['rate']}/s "
        f"({c['sms_sent']} SMS sent); handed to the SMS service (rate-limited) at {handed} a second",
        f"the sandbox got exactly one SMS per lead: {c['duplicates']} duplicated, {c['missing']} missing",
    ]
