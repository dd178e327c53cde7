"""Realtime on the same stack, after the buttons (`--no-realtime` skips it).

- fan-out: `--realtime-subscribers` websockets (1000) on the one gateway, all of one organisation and
  all on `leads.status_changed`, so that each gets every event; `--realtime-presses` status changes
  (300, PRESS_CONCURRENCY in flight, after WARMUP unmeasured ones) through the gateway. Per (press,
  subscriber) pair the press -> arrival latency; per press the arrival at its first and at its last
  subscriber; missing and duplicated events (both must be 0); event frames delivered per second to all
  subscribers together (first press sent -> last arrival).
- memory: the gateway's VmRSS (/proc/<pid>/status) before the sockets open and once every one has its
  welcome (then SETTLE s of quiet), over their number.
- replay (`bench.replay`): `--realtime-replay` events (10,000) to one client that reconnects with
  `resume`, from its hello to its last event.
- scale (`--no-realtime-scale` skips it): a resume to a screen's `--realtime-own` events (1,000) among
  `--realtime-others` (100,000) of other organisations (`bench.resume`); then, last because it restarts
  the gateway, a herd of screens resuming at once after that restart (`bench.herd`); the stack's gateway
  is the restarted process from then on (the memory after the run is that process's).

One ClientSession (no connection limit) holds every socket; they open OPEN_AT_ONCE at a time and are
all closed at the end, also on error. The per-socket queue of the gateway holds 1000 frames
(WS_QUEUE_SIZE): more presses than that in one burst would drop slow readers (1013) by design.
"""

import argparse
import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from bench import checks, herd, replay, report, resume, seed
from bench.driver import Listener, Sample, client, drive, update_jobs
from bench.procfs import cpu_s, cpu_use, rss_kib
from tests.support.stack import Stack

TOPIC = "leads.status_changed"
PRESS_CONCURRENCY = 8
WARMUP = 20
OPEN_AT_ONCE = 50
OPEN_TIMEOUT = 20.0
SETTLE = 2.0


@asynccontextmanager
async def crowd(http: aiohttp.ClientSession, url: str, token: str, count: int) -> AsyncIterator[list[Listener]]:
    """`count` listeners on TOPIC, each welcomed; all closed on the way out."""
    listeners = [Listener() for _ in range(count)]
    gate = asyncio.Semaphore(OPEN_AT_ONCE)

    async def open_one(listener: Listener) -> None:
        async with gate, asyncio.timeout(OPEN_TIMEOUT):
            await listener.open(http, url, token, [TOPIC])

    async def close_one(listener: Listener) -> None:
        async with gate:
            await listener.close()

    try:
        results = await asyncio.gather(*(open_one(x) for x in listeners), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise RuntimeError(f"{len(failed)} of {count} websockets did not open: {failed[0]!r}")
        yield listeners
    finally:
        await asyncio.gather(*(close_one(x) for x in listeners), return_exceptions=True)


async def wait_all(listeners: list[Listener], expected: int, timeout: float) -> None:
    """Until every listener has `expected` leads' events, or one was closed, or `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(len(x.arrivals) >= expected or x.closed for x in listeners):
            return
        await asyncio.sleep(0.1)


def fanout_figures(samples: list[Sample], listeners: list[Listener], frames: int) -> dict[str, Any]:
    pairs, first, last, missing = [], [], [], 0
    for s in samples:
        times = [x.arrivals[s.key] for x in listeners if s.key in x.arrivals]
        missing += len(listeners) - len(times)
        pairs += [(t - s.sent) * 1000 for t in times]
        if times:
            first.append((min(times) - s.sent) * 1000)
            last.append((max(times) - s.sent) * 1000)
    arrived = [x.arrivals[s.key] for s in samples for x in listeners if s.key in x.arrivals]
    wall = max(arrived) - min(s.sent for s in samples) if arrived else 0.0
    closed = [x.closed for x in listeners if x.closed]
    return {
        "subscribers": len(listeners),
        "expected": len(samples) * len(listeners),
        "arrived": len(pairs),
        "missing": missing,
        "duplicated": sum(x.frames - len(x.arrivals) for x in listeners),
        "closed": len(closed),
        "closed_first": closed[0] if closed else None,
        "latency_ms": report.spread(pairs),
        "first_ms": report.spread(first),
        "last_ms": report.spread(last),
        "frames": frames,
        "wall_s": wall,
        "frames_per_s": frames / wall if wall else 0.0,
    }


async def measure_fanout(stack: Stack, database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    org, token = seed.tenant()
    pid = _gateway_pid(stack)
    pids = {"gateway": pid, "bench client": os.getpid()}
    url = f"{stack.url}/api/leads/update-status"
    async with client(args.concurrency, args.request_timeout) as http, client(0, None) as ws_http:
        ids = await seed.via_gateway(http, stack.url, token, WARMUP + args.realtime_presses, args.concurrency)
        await checks.wait_projected(database_url, org, len(ids), args.event_timeout)
        warm, measured = ids[:WARMUP], ids[WARMUP:]
        await asyncio.sleep(SETTLE)
        before = rss_kib(pid)
        opening = time.perf_counter()
        async with crowd(ws_http, stack.url, token, args.realtime_subscribers) as listeners:
            opened_s = time.perf_counter() - opening
            await asyncio.sleep(SETTLE)
            after = rss_kib(pid)
            await drive(http, url, token, update_jobs(warm), PRESS_CONCURRENCY)
            await wait_all(listeners, len(warm), args.event_timeout)
            frames_before = sum(x.frames for x in listeners)
            cpu_before = {name: cpu_s(p) for name, p in pids.items()}
            samples = await drive(http, url, token, update_jobs(measured), PRESS_CONCURRENCY)
            await wait_all(listeners, len(ids), args.event_timeout)
            frames = sum(x.frames for x in listeners) - frames_before
            cpu = cpu_use(pids, cpu_before, frames)
            figures = fanout_figures(samples, listeners, frames)
    memory = {
        "rss_before_kib": before,
        "rss_after_kib": after,
        "per_connection_kib": (after - before) / args.realtime_subscribers,
    }
    return {
        "presses": len(measured),
        "concurrency": PRESS_CONCURRENCY,
        "warmup": WARMUP,
        "open_s": opened_s,
        "http": report.http_figures(samples),
        "events": figures,
        "memory": memory,
        **cpu,
    }


async def measure(stack: Stack, database_url: str, amqp_url: str, args: argparse.Namespace) -> dict[str, Any]:
    figures = {
        "fanout": await measure_fanout(stack, database_url, args),
        "replay": await replay.measure(stack.url, _gateway_pid(stack), amqp_url, args),
        "scale": None,
    }
    if args.realtime_scale:
        scale = await resume.measure(stack.url, _gateway_pid(stack), amqp_url, args)
        figures["scale"] = {**scale, "herd": await herd.measure(stack, amqp_url, args)}  # last: it restarts the gateway
    return figures


def _gateway_pid(stack: Stack) -> int:
    popen = stack.processes["gateway"].popen
    assert popen is not None, "the gateway was started before measuring"
    return popen.pid


def failed(r: dict[str, Any] | None) -> bool:
    if r is None:
        return False
    f, e, p = r["fanout"]["http"], r["fanout"]["events"], r["replay"]
    return bool(
        f["errors"]
        or e["missing"]
        or e["duplicated"]
        or e["closed"]
        or p["missing"]
        or p["duplicated"]
        or not p["in_order"]
        or p["recovered"] is not True
        or _scale_failed(r.get("scale"))
    )


def _scale_failed(s: dict[str, Any] | None) -> bool:
    if s is None:
        return False
    h = s["herd"]
    return bool(
        s["missing"]
        or s["duplicated"]
        or not s["in_order"]
        or s["recovered"] is not True
        or h["missing"]
        or h["duplicated"]
        or not h["in_order"]
        or h["not_recovered"]
    )
