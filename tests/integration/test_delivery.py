"""Delivery guarantees, proven against the real RabbitMQ and PostgreSQL.

Commands are published straight to the `commands` exchange, as any integrating
system would, and their replies read from the test's own reply queue.
"""

from uuid import uuid4

import asyncpg

from tests.support.broker import Probe
from tests.support.infra import Infra
from tests.support.stack import Stack


async def create(probe: Probe, org: str, name: str = "Lin Clark") -> str:
    correlation_id = await probe.send(
        "leads.create", {"name": name, "phone": "+14155550123"}, org=org, message_id=uuid4().hex
    )
    (reply,) = await probe.reply(correlation_id)
    assert reply.status == 201, reply.body
    return reply.body["lead"]["id"]


async def history(infra: Infra, lead_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(infra.database_url)
    try:
        return await conn.fetch("SELECT * FROM leads.lead_status_history WHERE lead_id = $1", lead_id)
    finally:
        await conn.close()


async def test_the_same_message_published_twice_has_one_effect_and_two_identical_replies(
    probe: Probe, infra: Infra, org: str
) -> None:
    lead = await create(probe, org)
    message_id = uuid4().hex
    body = {"leadId": lead, "status": "contacted"}
    correlation_id = await probe.send("leads.update_status", body, org=org, message_id=message_id)
    await probe.send("leads.update_status", body, org=org, message_id=message_id, correlation_id=correlation_id)

    first, second = await probe.reply(correlation_id, count=2)
    assert first.status == second.status == 200
    assert first.body == second.body
    assert sorted([first.headers["x-replayed"], second.headers["x-replayed"]]) == ["false", "true"]
    assert len(await history(infra, lead)) == 1
    await probe.barrier(org)
    assert len(probe.events_of(org, "leads.status_changed", lead)) == 1


async def test_a_known_message_id_with_another_body_is_refused(probe: Probe, infra: Infra, org: str) -> None:
    lead = await create(probe, org)
    message_id = uuid4().hex
    (ok,) = await probe.reply(
        await probe.send("leads.update_status", {"leadId": lead, "status": "contacted"}, org=org, message_id=message_id)
    )
    (refused,) = await probe.reply(
        await probe.send("leads.update_status", {"leadId": lead, "status": "won"}, org=org, message_id=message_id)
    )
    assert ok.status == 200
    assert refused.status == 422
    assert refused.body["type"] == "/problems/idempotency-key-reused"
    assert [r["to_status"] for r in await history(infra, lead)] == ["contacted"]


async def test_a_body_that_breaks_the_contract_is_answered_422_and_not_retried(
    probe: Probe, stack: Stack, org: str
) -> None:
    message_id = uuid4().hex
    (reply,) = await probe.reply(
        await probe.send("leads.update_status", {"leadId": "x", "status": "married"}, org=org, message_id=message_id)
    )
    assert reply.status == 422
    assert any(e["field"] == "status" for e in reply.body["errors"])
    (garbage,) = await probe.reply(await probe.send("leads.create", b"{not json", org=org, message_id=uuid4().hex))
    assert garbage.status == 422
    assert not stack.processes["leads"].logged("command.retry_scheduled", command_id=message_id)


async def test_a_command_without_org_is_refused(probe: Probe) -> None:
    # (A message without message_id cannot be sent from here: aiormq invents one for
    # every publish. That rule is covered in tests/unit/test_meta.py.)
    (no_org,) = await probe.reply(
        await probe.send("leads.create", {"name": "A", "phone": "+14155550123"}, org="", message_id=uuid4().hex)
    )
    assert no_org.status == 422 and "x-org-id" in no_org.body["detail"]


async def test_an_unknown_command_is_refused(probe: Probe, org: str) -> None:
    (reply,) = await probe.reply(await probe.send("leads.explode", {}, org=org, message_id=uuid4().hex))
    assert reply.status == 422
    assert "unknown command" in reply.body["detail"]


async def test_a_bulk_change_whose_last_lead_fails_changes_nothing_and_emits_nothing(
    probe: Probe, infra: Infra, org: str
) -> None:
    leads = [await create(probe, org, f"Lead {i}") for i in range(3)]
    won = leads[-1]
    (reply,) = await probe.reply(
        await probe.send("leads.update_status", {"leadId": won, "status": "won"}, org=org, message_id=uuid4().hex)
    )
    assert reply.status == 200
    (refused,) = await probe.reply(
        await probe.send(
            "leads.bulk_update_status", {"leadIds": leads, "status": "contacted"}, org=org, message_id=uuid4().hex
        )
    )
    assert refused.status == 409
    assert refused.body["updated"] == 0 and refused.body["leads"] == []
    assert refused.body["failed"] == [{"leadId": won, "reason": "cannot move from won to contacted"}]
    for lead in leads[:-1]:
        assert await history(infra, lead) == []
    await probe.barrier(org)
    assert [e["data"]["leadId"] for e in probe.events_of(org, "leads.status_changed")] == [won]
