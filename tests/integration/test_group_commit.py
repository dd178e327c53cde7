"""Group commit: commands delivered together share a transaction, and nothing about them changes."""

import signal
from uuid import uuid4

from tests.integration.test_delivery import create, history
from tests.support.broker import Probe
from tests.support.infra import Infra
from tests.support.stack import Stack, eventually


async def test_a_batch_with_a_refusal_and_a_replay_in_it_gives_each_command_its_own_answer(
    probe: Probe, infra: Infra, stack: Stack, org: str
) -> None:
    leads = [await create(probe, org, f"Lead {i}") for i in range(20)]
    won = await create(probe, org, "Already won")
    await probe.reply(
        await probe.send("leads.update_status", {"leadId": won, "status": "won"}, org=org, message_id=uuid4().hex)
    )
    repeated = uuid4().hex
    first = await probe.send(
        "leads.update_status", {"leadId": leads[0], "status": "contacted"}, org=org, message_id=repeated
    )
    (first_reply,) = await probe.reply(first)
    split_before = len(stack.processes["leads"].logged("group_commit.split"))
    # Published at once: while the first runs on its own, the others are delivered and go together.
    sent = [
        await probe.send(
            "leads.update_status", {"leadId": lead, "status": "qualified"}, org=org, message_id=uuid4().hex
        )
        for lead in leads[1:]
    ]
    again = await probe.send(
        "leads.update_status", {"leadId": leads[0], "status": "contacted"}, org=org, message_id=repeated
    )
    refused = await probe.send("leads.update_status", {"leadId": won, "status": "new"}, org=org, message_id=uuid4().hex)
    for correlation_id in sent:
        (reply,) = await probe.reply(correlation_id)
        assert reply.status == 200 and reply.body["lead"]["status"] == "qualified"
    (replayed,) = await probe.reply(again)
    assert (replayed.status, replayed.body, replayed.headers["x-replayed"]) == (200, first_reply.body, "true")
    (refusal,) = await probe.reply(refused)
    assert refusal.status == 409 and refusal.body["currentStatus"] == "won"
    splits = stack.processes["leads"].logged("group_commit.split")[split_before:]
    assert any(line["size"] > 1 for line in splits), "the refusal or the replay was in a batch of several"
    for lead in [*leads, won]:  # the first contacted once, the others qualified once, the won one untouched
        assert len(await history(infra, lead)) == 1
    await probe.barrier(org)
    changed = probe.events_of(org, "leads.status_changed")
    assert len({e["id"] for e in changed}) == 1 + 1 + 19  # won, contacted, qualified: each once


async def test_a_crash_between_the_commit_of_a_batch_and_its_acks_loses_nothing_and_doubles_nothing(
    probe: Probe, infra: Infra, stack: Stack, org: str
) -> None:
    leads = [await create(probe, org, f"Lead {i}") for i in range(12)]
    stack.processes["leads"].stop()
    crashing = stack.start("leads", FAULT_CRASH_AFTER_GROUP_COMMIT="true")
    try:
        await stack.wait_started("leads")
        sent = [
            await probe.send("leads.update_status", {"leadId": lead, "status": "won"}, org=org, message_id=uuid4().hex)
            for lead in leads
        ]
        await eventually(lambda: not crashing.running, 20, what="the service to die after a batch committed")
        assert crashing.popen.returncode == -signal.SIGKILL  # type: ignore[union-attr]
        committed = [lead for lead in leads if await history(infra, lead)]
        assert len(committed) >= 2  # a batch of several, committed and never acked
    finally:
        stack.start("leads")
        await stack.wait_started("leads")
    replies = [(await probe.reply(correlation_id, timeout=30))[-1] for correlation_id in sent]
    assert all(reply.status == 200 and reply.body["lead"]["status"] == "won" for reply in replies)
    assert sum(reply.headers["x-replayed"] == "true" for reply in replies) >= len(committed) - 1
    for lead in leads:
        assert len(await history(infra, lead)) == 1
    await probe.barrier(org)
    changed = probe.events_of(org, "leads.status_changed")
    assert sorted({e["data"]["leadId"] for e in changed}) == sorted(leads)
    assert len({e["id"] for e in changed}) == len(leads)
