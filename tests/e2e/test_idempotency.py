"""Idempotency-Key through HTTP: replays, reuse, races, restarts."""

import asyncio
from uuid import uuid4

import pytest

from tests.conftest import Api
from tests.integration.test_delivery import history
from tests.support.infra import Infra
from tests.support.stack import Stack


async def test_same_key_same_body_replays_the_first_answer(api: Api, infra: Infra) -> None:
    lead = (await api.create_lead())["id"]
    key = f"press-{uuid4()}"
    body = {"leadId": lead, "status": "contacted"}
    first = await api.post("/api/leads/update-status", body, key=key)
    again = await api.post("/api/leads/update-status", body, key=key)
    assert first[0] == again[0] == 200
    assert first[2] == again[2]
    assert "Idempotent-Replayed" not in first[1]
    assert again[1]["Idempotent-Replayed"] == "true"
    assert len(await history(infra, lead)) == 1


async def test_a_refusal_is_replayed_too(api: Api) -> None:
    lead = (await api.create_lead())["id"]
    await api.post("/api/leads/update-status", {"leadId": lead, "status": "won"})
    key = str(uuid4())
    first = await api.post("/api/leads/update-status", {"leadId": lead, "status": "new"}, key=key)
    again = await api.post("/api/leads/update-status", {"leadId": lead, "status": "new"}, key=key)
    assert first[0] == again[0] == 409 and first[2] == again[2]
    assert again[1]["Idempotent-Replayed"] == "true"


async def test_creating_with_a_key_creates_once(api: Api) -> None:
    key = str(uuid4())
    body = {"name": "Once", "phone": "+14155550111"}
    first = await api.post("/api/leads", body, key=key)
    again = await api.post("/api/leads", body, key=key)
    assert first[0] == again[0] == 201 and first[2] == again[2]
    _, _, page = await api.get("/api/leads")
    assert [lead["name"] for lead in page["leads"]].count("Once") == 1


async def test_same_key_another_body_is_422_and_changes_nothing(api: Api, infra: Infra) -> None:
    lead = (await api.create_lead())["id"]
    key = str(uuid4())
    await api.post("/api/leads/update-status", {"leadId": lead, "status": "contacted"}, key=key)
    status, _, problem = await api.post("/api/leads/update-status", {"leadId": lead, "status": "won"}, key=key)
    assert status == 422 and problem["type"] == "/problems/idempotency-key-reused"
    assert [r["to_status"] for r in await history(infra, lead)] == ["contacted"]


async def test_a_key_is_scoped_to_the_user_and_the_route(api: Api, org: str) -> None:
    key = str(uuid4())
    mine = await api.post("/api/leads", {"name": "Mine", "phone": "+14155550112"}, key=key)
    colleague = await api.as_user(org, "agent-2").post(
        "/api/leads", {"name": "Theirs", "phone": "+14155550113"}, key=key
    )
    assert mine[0] == colleague[0] == 201
    assert mine[2]["lead"]["id"] != colleague[2]["lead"]["id"]
    other_route = await api.post(
        "/api/leads/update-status", {"leadId": mine[2]["lead"]["id"], "status": "lost"}, key=key
    )
    assert other_route[0] == 200 and "Idempotent-Replayed" not in other_route[1]


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "bad/slash", "é"])
async def test_a_malformed_key_is_400(api: Api, key: str) -> None:
    status, _, problem = await api.post(
        "/api/leads", {"name": "K", "phone": "+14155550114"}, headers={"Idempotency-Key": key}
    )
    assert status == 400 and problem["type"] == "/problems/idempotency-key"


async def test_two_concurrent_requests_with_one_key_take_effect_once(api: Api, infra: Infra) -> None:
    lead = (await api.create_lead())["id"]
    key = str(uuid4())
    body = {"leadId": lead, "status": "qualified"}
    answers = await asyncio.gather(*(api.post("/api/leads/update-status", body, key=key) for _ in range(5)))
    statuses = {a[0] for a in answers}
    assert statuses <= {200, 409}, answers
    winners = [a for a in answers if a[0] == 200]
    assert winners and all(a[2] == winners[0][2] for a in winners)
    assert sum("Idempotent-Replayed" not in a[1] for a in winners) <= 1
    assert len(await history(infra, lead)) == 1


async def test_a_key_survives_restarting_every_process(api: Api, stack: Stack, infra: Infra) -> None:
    lead = (await api.create_lead())["id"]
    key = str(uuid4())
    body = {"leadId": lead, "status": "proposal"}
    first = await api.post("/api/leads/update-status", body, key=key)
    for name in ("gateway", "leads"):
        stack.processes[name].stop()
    stack.start("leads")
    await stack.wait_started("leads")
    stack.start("gateway")
    await stack.wait_gateway_ready()
    again = await api.post("/api/leads/update-status", body, key=key)
    assert (again[0], again[2]) == (first[0], first[2])
    assert again[1]["Idempotent-Replayed"] == "true"
    assert len(await history(infra, lead)) == 1
