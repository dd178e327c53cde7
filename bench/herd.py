"""A herd after a gateway restart, on the running stack: the last part of `bench.realtime` (it restarts the
gateway; `--no-realtime-scale` skips it with `bench.resume`).

`--realtime-herd-screens` screens (200) of `--realtime-herd-orgs` organisations (20), each with a user of
its own in its token (the gateway caps replays at 4 per user and 64 per gateway), are welcomed and note
(epoch, position). The gateway is stopped (SIGTERM: it closes them 1001); while it is down,
`--realtime-herd-events` (50) events of each of those organisations and `--realtime-herd-others` (10,000)
of other organisations are published, interleaved (`bench.traffic`). The gateway is started again: the
same entry of the stack, port and settings, so every later section uses it. Once its /readyz says
ready, all screens resume at once, each as a real client does (`bench.screens`: a 1013 "too many
replays" or a connection that fails is retried after a jittered backoff, from the last position applied).

Figures: ready -> every screen has every event of its organisation (`all_current_s`, None when one
never did within `--event-timeout`), per screen p50/p95 of the same, missing and duplicated events
(both must be 0), order, resumed welcomes not recovered, the 1013s seen (`retries`), other comebacks; from
ready to the end the gateway's CPU and, where its /metrics has them (`bench.metrics`), its archive's head
at both ends and the records its resumes read, by source.
"""

import argparse
import asyncio
import time
from itertools import pairwise
from typing import Any

import aiohttp

from bench import report, seed, traffic
from bench.driver import client
from bench.metrics import ARCHIVE_GAUGE, read_by_source, scrape
from bench.procfs import cpu_s
from bench.screens import Screen
from services.gateway.auth import issue
from tests.support.stack import TEST_SECRET, Stack

OPEN_AT_ONCE = 50
OPEN_TIMEOUT = 20.0
READY_TIMEOUT = 60.0

Herd = list[tuple[Screen, set[str]]]  # each screen, and the ids of the events of its organisation


async def _welcome_all(http: aiohttp.ClientSession, screens: list[Screen]) -> None:
    gate = asyncio.Semaphore(OPEN_AT_ONCE)

    async def one(screen: Screen) -> None:
        async with gate, asyncio.timeout(OPEN_TIMEOUT):
            await screen.hello(http, resume=False)

    await asyncio.gather(*(one(s) for s in screens))


async def _restart(
    stack: Stack, screens: list[Screen], amqp_url: str, events: list[traffic.Event]
) -> tuple[float, float, float]:
    """Stop the gateway, publish `events` while it is down, start it again; (publish s, stop -> ready s,
    when it was ready)."""
    gateway = stack.processes["gateway"]
    stopping = time.perf_counter()
    await asyncio.to_thread(gateway.stop)
    if not all(await asyncio.gather(*(s.closed(OPEN_TIMEOUT) for s in screens))):
        raise RuntimeError("the stopped gateway left websockets open")
    publish_s = await traffic.publish(amqp_url, events)
    gateway.start()
    await stack.wait_gateway_ready(READY_TIMEOUT)
    ready = time.perf_counter()
    return publish_s, ready - stopping, ready


def _screens(url: str, orgs: list[str], own: list[traffic.Event], count: int) -> Herd:
    """`count` screens over `orgs` in turn, each with a user of its own, and the ids it must get."""
    herd = []
    for i in range(count):
        org = orgs[i % len(orgs)]
        screen = Screen(url, issue(TEST_SECRET, org, f"bench-herd-{i}"), traffic.TOPICS)
        herd.append((screen, {e["id"] for e in own if e["org_id"] == org}))
    return herd


async def measure(stack: Stack, amqp_url: str, args: argparse.Namespace) -> dict[str, Any]:
    orgs = [seed.tenant()[0] for _ in range(args.realtime_herd_orgs)]
    own = traffic.of(orgs, args.realtime_herd_events * len(orgs))
    events = traffic.interleave(own, traffic.others(args.realtime_herd_others))
    herd = _screens(stack.url, orgs, own, args.realtime_herd_screens)
    screens = [s for s, _ in herd]
    async with client(0, None) as http:
        try:
            await _welcome_all(http, screens)
            publish_s, restart_s, ready = await _restart(stack, screens, amqp_url, events)
            popen = stack.processes["gateway"].popen
            assert popen is not None  # (started by _restart)
            cpu_before, at_ready = cpu_s(popen.pid), await scrape(http, stack.url)
            deadline = time.monotonic() + args.event_timeout
            await asyncio.gather(*(s.catch_up(http, ids, deadline) for s, ids in herd))
            cpu, at_end = cpu_s(popen.pid) - cpu_before, await scrape(http, stack.url)
        finally:
            await asyncio.gather(*(s.close() for s in screens), return_exceptions=True)
    sizes = {"screens": len(herd), "orgs": len(orgs), "events_per_org": args.realtime_herd_events}
    sizes = {**sizes, "others": args.realtime_herd_others, "publish_s": publish_s, "restart_s": restart_s}
    archive = {"at_ready": at_ready.get(ARCHIVE_GAUGE), "at_end": at_end.get(ARCHIVE_GAUGE)}
    gateway = {"cpu_s": {"gateway": cpu}, "archive": archive, "records_read": read_by_source(at_ready, at_end)}
    return {**sizes, **_figures(herd, ready), **gateway}


def _figures(screens: Herd, ready: float) -> dict[str, Any]:
    current = [max(a.at for a in s.arrivals if a.id in ids) - ready for s, ids in screens if ids <= s.ids]
    resumed = [w for s, _ in screens for w in s.welcomes[1:]]
    return {
        "all_current_s": max(current) if len(current) == len(screens) else None,
        "current": len(current),
        "current_s": {"p50": report.percentile(current, 50), "p95": report.percentile(current, 95)},
        "expected": sum(len(ids) for _, ids in screens),
        "received": sum(len(s.arrivals) for s, _ in screens),
        "missing": sum(len(ids - s.ids) for s, ids in screens),
        "duplicated": sum(len(s.arrivals) - len({a.id for a in s.arrivals}) for s, _ in screens),
        "in_order": all(a.position < b.position for s, _ in screens for a, b in pairwise(s.arrivals)),
        "resumes": len(resumed),
        "not_recovered": sum(w.get("recovered") is not True for w in resumed),
        "retries": sum(s.refused for s, _ in screens),
        "reconnects": sum(s.reconnects for s, _ in screens),
    }
