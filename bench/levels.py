"""Status changes at other concurrencies: one press at a time (always) and the growth levels.

- idle: `--idle-requests` status changes at concurrency 1 (goal 2: pipeline HTTP p50 against the
  baseline's, press -> websocket against the pipeline's HTTP; goal 8: against the floor's);
- growth (`--no-growth` skips it): `--growth-requests` status changes at each of GROWTH (8, 32, 128)
  in flight (goal 6), for the pipeline, the baseline and the floor alike.

A level equal to `--concurrency` is not run again: the main measurement stands for it. Each level
runs on fresh leads in status `new` (seeded up front, all in one organisation), after warm-up(c)
unmeasured presses through its own ClientSession of c connections, so that opening them is not
measured. On the pipeline a websocket stays open on `leads.status_changed` and each level waits for
its leads' events (warm-up included) before the next one starts.
"""

import argparse
from typing import Any

from bench import checks, report, seed
from bench.driver import Listener, Sample, client, drive, update_jobs

TOPIC = "leads.status_changed"
GROWTH = (8, 32, 128)
SYSTEMS = ("pipeline", "baseline", "floor")

Plan = list[tuple[int, int, int]]  # (concurrency, warm-up, measured requests)


def warmup(concurrency: int) -> int:
    return max(20, 2 * concurrency)


def plan(args: argparse.Namespace) -> Plan:
    """The levels to run besides the main one, lowest concurrency first."""
    levels = [(1, args.idle_requests)] + ([(c, args.growth_requests) for c in GROWTH] if args.growth else [])
    return [(c, warmup(c), n) for c, n in levels if c != args.concurrency]


def _batches(ids: list[str], levels: Plan) -> list[tuple[list[str], list[str]]]:
    out, at = [], 0
    for _, warm, n in levels:
        out.append((ids[at : at + warm], ids[at + warm : at + warm + n]))
        at += warm + n
    return out


async def _level(
    url: str, token: str, concurrency: int, warm: list[str], measured: list[str], timeout: float
) -> list[Sample]:
    async with client(concurrency, timeout) as http:
        await drive(http, url, token, update_jobs(warm), concurrency)
        return await drive(http, url, token, update_jobs(measured), concurrency)


async def pipeline(url: str, database_url: str, levels: Plan, args: argparse.Namespace) -> dict[int, dict[str, Any]]:
    org, token = seed.tenant()
    total = sum(w + n for _, w, n in levels)
    async with client(args.concurrency, args.request_timeout) as http:
        ids = await seed.via_gateway(http, url, token, total, args.concurrency)
    await checks.wait_projected(database_url, org, total, args.event_timeout)
    out: dict[int, dict[str, Any]] = {}
    events = Listener()
    async with client(1, None) as ws_http:
        await events.open(ws_http, url, token, [TOPIC])
        try:
            for (c, _, _), (warm, measured) in zip(levels, _batches(ids, levels), strict=True):
                samples = await _level(f"{url}/api/leads/update-status", token, c, warm, measured, args.request_timeout)
                await events.wait_for(warm + measured, args.event_timeout)
                out[c] = {
                    "http": report.http_figures(samples),
                    "events": report.event_figures(samples, events.arrivals, events.closed),
                    "db_changed": await seed.count_status(database_url, measured, "contacted"),
                }
        finally:
            await events.close()
    return out


async def peer(url: str, database_url: str, levels: Plan, args: argparse.Namespace) -> dict[int, dict[str, Any]]:
    """The baseline's or the floor's levels: both answer POST /update-status, on leads seeded in SQL."""
    org, token = seed.tenant()
    ids = await seed.via_sql(database_url, org, seed.USER, sum(w + n for _, w, n in levels))
    out: dict[int, dict[str, Any]] = {}
    for (c, _, _), (warm, measured) in zip(levels, _batches(ids, levels), strict=True):
        samples = await _level(f"{url}/update-status", token, c, warm, measured, args.request_timeout)
        out[c] = {
            "http": report.http_figures(samples),
            "db_changed": await seed.count_status(database_url, measured, "contacted"),
        }
    return out


def combine(
    result: dict[str, Any],
    pipeline_levels: dict[int, dict[str, Any]],
    baseline_levels: dict[int, dict[str, Any]],
    floor_levels: dict[int, dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Every level measured, the main one included, keyed by its concurrency (a string, for JSON)."""
    main = {
        "pipeline": result["pipeline"],
        "events": result["events"],
        "baseline": result["baseline"],
        "floor": result["floor"],
        "db_changed": result["db_changed"],
        "requests": result["requests"],
        "main": True,
    }
    rows = {result["concurrency"]: main}
    for c, p in pipeline_levels.items():
        b, f = baseline_levels[c], floor_levels[c]
        rows[c] = {
            "pipeline": p["http"],
            "events": p["events"],
            "baseline": b["http"],
            "floor": f["http"],
            "main": False,
            "db_changed": {"pipeline": p["db_changed"], "baseline": b["db_changed"], "floor": f["db_changed"]},
            "requests": p["http"]["requests"],
        }
    for row in rows.values():
        row["ratios"] = report.ratios(row["pipeline"], row["baseline"], row["floor"])
    return {str(c): rows[c] for c in sorted(rows)}


def failed(levels: dict[str, dict[str, Any]]) -> bool:
    return any(
        r["events"]["missing"]
        or any(r[system]["errors"] or r["db_changed"][system] != r["requests"] for system in SYSTEMS)
        for r in levels.values()
    )
