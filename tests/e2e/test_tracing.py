"""One press is one trace: the gateway's HTTP span, the leads service's consume span, the publish
of its event, and the gateway's fan-out of that event to the screens, all under one trace id.

A stack of its own (gateway and leads, on a database and vhost of their own) with TRACE_FILE set:
each process writes its finished spans as JSON lines (shared/tracing.py)."""

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from services.gateway.auth import issue
from tests.conftest import STACK_ENV
from tests.support import infra as infra_mod
from tests.support.stack import TEST_SECRET, Stack, eventually


@pytest.fixture(scope="module")
async def traced(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Stack, Path]]:
    infra = await infra_mod.provision()
    logs = tmp_path_factory.mktemp("traced")
    stack = Stack({**infra.env(), **STACK_ENV}, logs)
    try:
        stack.start("leads", TRACE_FILE=str(logs / "leads.spans"))
        await stack.wait_started("leads")
        stack.start("gateway", TRACE_FILE=str(logs / "gateway.spans"))
        await stack.wait_gateway_ready()
        yield stack, logs
    finally:
        stack.stop_all()
        await infra_mod.release(infra)


def spans(logs: Path) -> list[dict]:
    return [json.loads(line) for f in logs.glob("*.spans") for line in f.read_text().splitlines() if line]


async def test_one_press_is_one_connected_trace(traced: tuple[Stack, Path]) -> None:
    stack, logs = traced
    token = issue(TEST_SECRET, "traced-org", "agent-1")
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.url}/api/leads", json={"name": "Ada", "phone": "+14155550100"}, headers=auth
        ) as response:
            assert response.status == 201, await response.text()
            lead = (await response.json())["lead"]["id"]
        async with http.ws_connect(stack.url.replace("http", "ws") + "/ws") as ws:
            await ws.send_json({"type": "hello", "token": token, "topics": ["leads.status_changed"]})
            assert (await ws.receive_json(timeout=10))["type"] == "welcome"
            async with http.post(
                f"{stack.url}/api/leads/update-status", json={"leadId": lead, "status": "won"}, headers=auth
            ) as response:
                assert response.status == 200
            while (frame := await ws.receive_json(timeout=10))["type"] != "event":
                pass
            assert frame["data"]["leadId"] == lead

    def the_press() -> list[dict] | None:
        found = spans(logs)
        http_spans = [s for s in found if s["service"] == "gateway" and "update-status" in s["name"]]
        if not http_spans:
            return None
        trace = [s for s in found if s["trace_id"] == http_spans[0]["trace_id"]]
        has = {(s["service"], s["name"]) for s in trace}
        wanted = any(svc == "leads" for svc, _ in has) and ("gateway", "events.fanout") in has
        return trace if wanted else None

    trace = await eventually(the_press, 15, what="the gateway, leads and fan-out spans of the press")
    by_id = {s["span_id"]: s for s in trace}
    roots = [s for s in trace if s["parent_id"] not in by_id]
    assert len(roots) == 1 and roots[0]["service"] == "gateway", roots  # connected: one root, the HTTP request
    fanout = next(s for s in trace if s["name"] == "events.fanout")
    chain = []
    while fanout["parent_id"] in by_id:  # from the fan-out back to the request, through the service
        fanout = by_id[fanout["parent_id"]]
        chain.append(fanout["service"])
    assert "leads" in chain and chain[-1] == "gateway"
