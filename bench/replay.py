"""A replay to one reconnecting client, on the running stack (part of `bench.realtime`).

One socket of a fresh organisation says hello, notes the welcome's (epoch, position) and closes;
`--realtime-replay` events (10,000) of that organisation are then published straight onto the `events`
exchange (persistent, publisher confirms, 200 at a time, as an outbox relay does) while a live probe
socket of the same organisation waits until the gateway has read them all, so that what follows is a
replay from the log and not live delivery. The socket reconnects with `resume`: measured from its hello
to its last event; each event must arrive once, in position order, after a `recovered: true` welcome.
"""

import argparse
import asyncio
import json
import os
import time
from itertools import pairwise
from typing import Any

import aio_pika
import aiohttp

from bench import seed
from bench.driver import Listener, client
from bench.procfs import cpu_s, cpu_use
from tests.support.realtime import envelope, publish_events

TOPICS = ["bench.*"]
HELLO_TIMEOUT = 20.0


async def _published_and_read(
    http: aiohttp.ClientSession, url: str, amqp_url: str, org: str, token: str, count: int, timeout: float
) -> tuple[float, set[str]]:
    """Publish `count` events of `org` (how long it took, their ids) and return once a live socket got
    them all: the gateway has read them."""
    events = [envelope(org, "bench.replayed", n=i) for i in range(count)]
    probe = Listener(key="n")
    await probe.open(http, url, token, TOPICS)
    try:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()  # publisher confirms: aio-pika's default
            started = time.perf_counter()
            await publish_events(channel, events)
            publish_s = time.perf_counter() - started
        if await probe.wait_for([str(i) for i in range(count)], timeout):
            raise RuntimeError(f"the live probe got {len(probe.arrivals)} of {count} published events")
    finally:
        await probe.close()
    return publish_s, {e["id"] for e in events}


async def _hello(ws: aiohttp.ClientWebSocketResponse, token: str, resume: dict[str, Any] | None) -> dict[str, Any]:
    await ws.send_json({"type": "hello", "token": token, "topics": TOPICS, **({"resume": resume} if resume else {})})
    welcome = await ws.receive_json(timeout=HELLO_TIMEOUT)
    if welcome.get("type") != "welcome":
        raise RuntimeError(f"the websocket answered the hello with {welcome!r}")
    return welcome


async def _events(ws: aiohttp.ClientWebSocketResponse, count: int, timeout: float) -> list[tuple[str, int]]:
    """(id, position) of the events that arrive, until `count` did or `timeout` s passed."""
    got: list[tuple[str, int]] = []
    try:
        async with asyncio.timeout(timeout):
            while len(got) < count:
                message = await ws.receive()
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                frame = json.loads(message.data)
                if frame.get("type") == "event":
                    got.append((frame["id"], frame["position"]))
    except TimeoutError:
        pass
    return got


async def measure(url: str, pid: int, amqp_url: str, args: argparse.Namespace) -> dict[str, Any]:
    org, token = seed.tenant()
    count = args.realtime_replay
    pids = {"gateway": pid, "bench client": os.getpid()}
    async with client(0, None) as http:
        async with http.ws_connect(f"{url}/ws") as ws:
            welcome = await _hello(ws, token, None)
        resume = {"epoch": welcome["epoch"], "position": welcome["position"]}
        publish_s, published = await _published_and_read(http, url, amqp_url, org, token, count, args.event_timeout)
        async with http.ws_connect(f"{url}/ws") as ws:
            cpu_before = {name: cpu_s(p) for name, p in pids.items()}
            started = time.perf_counter()
            again = await _hello(ws, token, resume)
            welcomed = time.perf_counter()
            got = await _events(ws, count, args.event_timeout)
            done = time.perf_counter()
            cpu = cpu_use(pids, cpu_before, len(got))
    ids = [i for i, _ in got]
    positions = [p for _, p in got]
    seconds = done - started
    return {
        "events": count,
        "publish_s": publish_s,
        "recovered": again.get("recovered"),
        "received": len(got),
        "missing": len(published - set(ids)),
        "duplicated": len(ids) - len(set(ids)),
        "in_order": all(a < b for a, b in pairwise(positions)),
        "welcome_ms": (welcomed - started) * 1000,
        "replay_s": seconds,
        "events_per_s": len(got) / seconds if seconds else 0.0,
        **cpu,
    }
