"""The Python client's live feed against a gateway that says 1013 (too many replays, or too slow): it
comes back with exponential backoff and full jitter, resuming from where it was, until it is served."""

import asyncio
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from crm_client import live
from crm_client.http import RetryPolicy


async def test_a_1013_is_retried_with_growing_jittered_waits_and_resumed(monkeypatch: pytest.MonkeyPatch) -> None:
    hellos: list[dict] = []

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        hellos.append(await ws.receive_json())
        if len(hellos) <= 5:
            await ws.close(code=1013, message=b"too many replays for this user: resume after a backoff")
            return ws
        await ws.send_json({"type": "welcome", "epoch": "e", "recovered": True, "position": 5})
        await ws.send_json(
            {"type": "event", "topic": "leads.created", "id": "x", "position": 6, "epoch": "e", "data": {}}
        )
        await ws.receive()  # until the client goes
        return ws

    app = web.Application()
    app.router.add_get("/ws", socket)
    ceilings: list[tuple[float, float]] = []
    # The waits are drawn from 0 to a ceiling (full jitter): record the ceilings, and wait none.
    monkeypatch.setattr(live, "random", SimpleNamespace(uniform=lambda low, high: ceilings.append((low, high)) or 0.0))
    async with TestServer(app) as server:
        stream = live.subscribe(
            str(server.make_url("/")),
            "token",
            ["leads.*"],
            live.Resume("e", 5),
            5.0,
            RetryPolicy(backoff=0.25, backoff_max=4.0),
        )
        event = await asyncio.wait_for(anext(stream), 30)
        await stream.aclose()
    assert isinstance(event, live.Event) and event.position == 6
    assert [hello["resume"] for hello in hellos] == [{"epoch": "e", "position": 5}] * 6
    assert ceilings == [(0, 0.5), (0, 1.0), (0, 2.0), (0, 4.0), (0, 4.0)]  # doubling, up to backoff_max
