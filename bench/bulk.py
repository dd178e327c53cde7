"""A bulk change of BULK_SIZE leads (goal 4): POST /api/leads/update-status {"leadIds", "status"}.

One unmeasured press, then `--bulk-presses` measured ones, one at a time, each on BULK_SIZE fresh
leads in status `new` (inserted straight into leads.leads: no other service keeps anything of a lead
for a status change, and seeding 6,000 leads through the gateway would take longer than the
presses). Per press: the HTTP latency, and the time to the last of its BULK_SIZE
`leads.status_changed` events on a websocket; the next press waits for them, so that no press is
measured while the previous one's events are still being published.
"""

import argparse
import json
from statistics import median
from typing import Any

import aiohttp

from bench import report, seed
from bench.driver import Listener, Sample, client, drive

BULK_SIZE = 1000
TOPIC = "leads.status_changed"


async def _press(
    http: aiohttp.ClientSession, url: str, token: str, ids: list[str], events: Listener, timeout: float
) -> tuple[Sample, float | None, int]:
    body = json.dumps({"leadIds": ids, "status": "contacted"}).encode()
    [sample] = await drive(http, f"{url}/api/leads/update-status", token, [("bulk", body)], 1)
    missing = await events.wait_for(ids, timeout)
    last = None if missing else (max(events.arrivals[i] for i in ids) - sample.sent) * 1000
    return sample, last, missing


def _updated(sample: Sample) -> int | None:
    return json.loads(sample.body).get("updated") if sample.status == 200 else None


async def measure(url: str, database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    org, token = seed.tenant()
    ids = await seed.via_sql(database_url, org, seed.USER, BULK_SIZE * (1 + args.bulk_presses))
    chunks = [ids[i : i + BULK_SIZE] for i in range(0, len(ids), BULK_SIZE)]
    events = Listener()
    presses = []
    async with client(1, args.request_timeout) as http, client(1, None) as ws_http:
        await events.open(ws_http, url, token, [TOPIC])
        try:
            for chunk in chunks:
                presses.append(await _press(http, url, token, chunk, events, args.event_timeout))
        finally:
            await events.close()
    measured = presses[1:]
    http_ms = [(s.done - s.sent) * 1000 for s, _, _ in measured if s.status == 200]
    last_ms = [t for _, t, _ in measured if t is not None]
    return {
        "size": BULK_SIZE,
        "presses": len(measured),
        "warmup": 1,
        "statuses": [str(s.status) for s, _, _ in measured],
        "updated": [_updated(s) for s, _, _ in measured],
        "http_ms": http_ms,
        "http_median_ms": median(http_ms) if http_ms else None,
        "last_event_ms": last_ms,
        "last_event_median_ms": median(last_ms) if last_ms else None,
        "missing_events": sum(m for _, _, m in measured),
        "db_changed": await seed.count_status(database_url, [i for c in chunks[1:] for i in c], "contacted"),
        "latency_ms": report.spread(http_ms),
    }


def failed(b: dict[str, Any] | None) -> bool:
    return b is not None and bool(
        any(s != "200" for s in b["statuses"]) or b["missing_events"] or b["db_changed"] != b["size"] * b["presses"]
    )
