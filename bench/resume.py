"""A resume after others' events, on the running stack (part of `bench.realtime`; `--no-realtime-scale`
skips it with the herd).

A screen of a fresh organisation A says hello, notes its welcome's (epoch, position) and closes. Then
`--realtime-others` events (100,000) of OTHER_ORGS (100) other organisations and `--realtime-own` (1,000)
of A are published (`bench.traffic`), interleaved, the last one A's, while a live probe socket of A
waits until it got all of A's: the gateway has read the log that far. A gateway that archives the log
says how far on its /metrics (`bench.metrics`): then we also wait until its archive holds A's last event,
so that what follows is served from the archive.

The screen then resumes: hello -> welcome, hello -> A's last event (`resume_ms`), A's events per second
over that time, each once, in position order, after a `recovered: true` welcome; the gateway's CPU
meanwhile, and, where the gateway counts them (by source), the records it read for it.
A gateway that reads every record after the position takes time that grows with everybody's events;
one that reads an index by organisation, with A's own.
"""

import argparse
import asyncio
import os
import time
from itertools import pairwise
from typing import Any

import aiohttp

from bench import seed, traffic
from bench.driver import client
from bench.metrics import ARCHIVE_GAUGE, read_by_source, scrape
from bench.procfs import cpu_s, cpu_use
from bench.screens import Screen

POLL = 0.05


async def _archived(http: aiohttp.ClientSession, url: str, position: int, timeout: float) -> dict[str, Any] | None:
    """Until the gateway's archive holds `position` (at most `timeout` s); None when it keeps no archive."""
    started, deadline = time.perf_counter(), time.monotonic() + timeout
    head = (await scrape(http, url)).get(ARCHIVE_GAUGE)
    if head is None:
        return None
    while head < position and time.monotonic() < deadline:
        await asyncio.sleep(POLL)
        head = (await scrape(http, url)).get(ARCHIVE_GAUGE, head)
    return {"position": head, "caught_up": head >= position, "wait_s": time.perf_counter() - started}


async def _published_and_read(
    http: aiohttp.ClientSession,
    probe: Screen,
    amqp_url: str,
    events: list[traffic.Event],
    own: set[str],
    timeout: float,
) -> dict[str, Any]:
    """Publish `events`, and return once the live probe got every one of `own` (the gateway has read them
    all) or `timeout` s passed: how long each took, and the position of the last of `own` it got."""
    await probe.hello(http, resume=False)
    try:
        publish_s = await traffic.publish(amqp_url, events)
        published = time.perf_counter()
        read_all = await probe.wait_for(own, time.monotonic() + timeout)
    finally:
        await probe.close()
    last = max((a.position for a in probe.arrivals if a.id in own), default=None)
    if last is None:
        raise RuntimeError(f"the live probe got none of {len(own)} published events in {timeout:g} s")
    read_s = max(a.at for a in probe.arrivals) - published
    return {"publish_s": publish_s, "read_s": read_s, "read_all": read_all, "last": last}


async def measure(url: str, pid: int, amqp_url: str, args: argparse.Namespace) -> dict[str, Any]:
    org, token = seed.tenant()
    own = traffic.of([org], args.realtime_own)
    wanted = {e["id"] for e in own}
    events = traffic.interleave(own, traffic.others(args.realtime_others))
    pids = {"gateway": pid, "bench client": os.getpid()}
    screen = Screen(url, token, traffic.TOPICS)
    async with client(0, None) as http:
        await screen.hello(http, resume=False)
        await screen.close()
        start = screen.position
        probe = Screen(url, token, traffic.TOPICS)
        published = await _published_and_read(http, probe, amqp_url, events, wanted, _setup_timeout(args))
        last = published.pop("last")
        archive = await _archived(http, url, last, _setup_timeout(args))
        metrics_before = await scrape(http, url)
        cpu_before = {name: cpu_s(p) for name, p in pids.items()}
        welcome = await screen.hello(http)
        try:
            await screen.wait_for(wanted, time.monotonic() + args.event_timeout)
            gave_up = time.perf_counter()
            cpu = cpu_use(pids, cpu_before, len(screen.arrivals))
        finally:
            await screen.close()
        read = read_by_source(metrics_before, await scrape(http, url))
    figures = {**_figures(screen, welcome, wanted, gave_up), **published, "records_read": read}
    return {**figures, **_sizes(args, start, last, archive), **cpu}


def _figures(screen: Screen, welcome: dict[str, Any], wanted: set[str], gave_up: float) -> dict[str, Any]:
    """`resume_ms` is up to the last own event, or, when one never came, up to when we gave up (`complete` False)."""
    got, complete = screen.arrivals, wanted <= screen.ids
    seconds = (max(a.at for a in got) if complete else gave_up) - screen.hello_at
    return {
        "resume_ms": seconds * 1000,
        "complete": complete,
        "welcome_ms": (screen.welcomed_at - screen.hello_at) * 1000,
        "own_per_s": len(got) / seconds if seconds else 0.0,
        "recovered": welcome.get("recovered"),
        "received": len(got),
        "missing": len(wanted - screen.ids),
        "duplicated": len(got) - len({a.id for a in got}),
        "in_order": all(a.position < b.position for a, b in pairwise(got)),
    }


def _sizes(args: argparse.Namespace, start: int | None, last: int, archive: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "own": args.realtime_own,
        "others": args.realtime_others,
        "other_orgs": traffic.OTHER_ORGS,
        "records_after": last - start if start is not None else None,  # log records from the position to the last
        "archive": archive,
    }


def _setup_timeout(args: argparse.Namespace) -> float:
    """How long the gateway may take to read (and archive) the 101,000 events before the resume is measured:
    on a busy 2-core machine its live reader takes a minute or more (about 2,000 records/s with the archiver
    reading beside it); what is measured is the resume once they are in, not that."""
    return max(args.event_timeout, 240.0)
