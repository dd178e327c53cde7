"""Broker fuzz: whatever arrives on `commands` is answered (or parked) with a reason, never a crashed
consumer, never a blocked queue. Each bad message is followed by a good one that must still be
answered, and every service's work queue must be empty at the end."""

import json
from uuid import uuid4

import aio_pika
import pytest

from shared.buttons import BUTTONS
from tests.support.broker import Probe
from tests.support.stack import Stack, eventually

TWO_MB = json.dumps({"name": "x" * (2 * 1024 * 1024), "phone": "+14155550100"}).encode()
# (what, routing key, body, how it is sent); every one must be refused with a 4xx and a reason. (A message
# without a message id cannot be sent from here: aiormq makes one up; tests/unit/test_meta.py has that case.)
CASES = [
    ("not JSON", "leads.create", b"{not json", {}),
    ("not UTF-8", "leads.create", b"\xff\xfe\x00", {}),
    ("JSON but not an object", "leads.create", b"[1, 2, 3]", {}),
    ("wrong types", "leads.update_status", json.dumps({"leadId": 7, "status": ["won"]}).encode(), {}),
    ("a 2 MB body", "leads.create", TWO_MB, {}),
    ("NUL bytes", "leads.create", json.dumps({"name": "A\u0000B", "phone": "+14155550100"}).encode(), {}),
    ("an unknown routing key", "leads.do_everything", b"{}", {}),
    ("an unknown service's key", "nobody.create", b"{}", {"unroutable": True}),
    ("no x-user-id", "leads.create", json.dumps({"name": "A", "phone": "+14155550100"}).encode(), {"user": None}),
    ("no user_id", "leads.create", json.dumps({"name": "A", "phone": "+14155550100"}).encode(), {"broker_user": None}),
]


async def publish(
    probe: Probe,
    routing_key: str,
    body: bytes,
    org: str,
    message_id: str | None,
    user: str | None,
    broker_user: str | None,
) -> str:
    correlation_id = uuid4().hex
    headers = {"x-org-id": org, **({"x-user-id": user} if user else {})}
    exchange = await probe.channel.get_exchange("commands")
    await exchange.publish(
        aio_pika.Message(
            body,
            message_id=message_id,
            correlation_id=correlation_id,
            reply_to=probe.reply_queue,
            headers=headers,
            user_id=broker_user,
            content_type="application/json",
        ),
        routing_key,
    )
    return correlation_id


@pytest.mark.parametrize(("what", "routing_key", "body", "how"), CASES, ids=[c[0] for c in CASES])
async def test_bad_input_on_the_broker_is_answered_and_nothing_blocks(
    probe: Probe, stack: Stack, org: str, what: str, routing_key: str, body: bytes, how: dict
) -> None:
    message_id = how.get("message_id", str(uuid4()))
    user = how.get("user", "fuzzer")
    broker_user = how.get("broker_user", probe.broker_user)
    correlation_id = await publish(probe, routing_key, body, org, message_id, user, broker_user)
    if not how.get("unroutable"):  # an unknown service has no queue: the exchange drops it, nobody is blocked
        (reply,) = await probe.reply(correlation_id)
        assert 400 <= reply.status < 500 and reply.body["detail"], (what, reply)
    # The queue still flows: a good command after the bad one is answered.
    good = await probe.send(
        "leads.create", {"name": f"After {what}", "phone": "+14155550100"}, org=org, message_id=str(uuid4())
    )
    (after,) = await probe.reply(good)
    assert after.status == 201
    assert stack.processes["leads"].running


async def test_every_work_queue_is_empty_afterwards(probe: Probe, stack: Stack) -> None:
    services = sorted({b.service for b in BUTTONS})

    async def drained() -> bool:
        for service in services:
            queue = await probe.channel.declare_queue(f"{service}.commands", passive=True)
            if queue.declaration_result.message_count:
                return False
        return True

    await eventually(drained, 30, 0.2, "every work queue to be empty")
    assert all(stack.processes[s].running for s in services)
