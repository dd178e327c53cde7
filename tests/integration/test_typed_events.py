"""Typed events against the real broker (shared/service.py `Service.event`, shared/consumer.py `Step`).

Each service's work queue is bound, by the service itself when it starts, to the events it registers: an event
published on `events` reaches every service that registered its type. An event whose data is not its model is
refused, and the refusal stored and acked like any (never retried, never parked); one whose `when` declines is
done once, with nothing done.
"""

import json
from uuid import uuid4

import aio_pika
import asyncpg

from shared.contracts.envelope import Event
from shared.identity import own_user
from tests.support import infra as infra_mod
from tests.support.stack import Stack, eventually

# Who registered what (services/*/handlers.py): every one of them must hear its events.
REGISTERED = {
    "leads.created": ("bookings", "sms", "proposals", "documents"),
    "proposals.sent": ("leads",),
    "proposals.accepted": ("leads",),
    "proposals.declined": ("leads",),
    "appointments.confirmed": ("sms",),
}


async def publish(infra: infra_mod.Infra, type_: str, data: dict, org: str) -> str:
    """An event as the outbox relay publishes it: as the platform's broker user, its id the message id."""
    event = Event(type=type_, org_id=org, data=data)
    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        exchange = await (await connection.channel()).get_exchange("events", ensure=False)
        await exchange.publish(
            aio_pika.Message(
                event.model_dump_json().encode(),
                message_id=str(event.id),
                content_type="application/json",
                user_id=own_user(infra.amqp_url),
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            type_,
        )
    return str(event.id)


async def answers(infra: infra_mod.Infra, services: tuple[str, ...], message_id: str) -> dict[str, tuple[int, dict]]:
    """What each service stored as its answer to the message (its inbox row), for those that have one."""
    conn = await asyncpg.connect(infra.database_url)
    try:
        found = {}
        for service in services:
            row = await conn.fetchrow(f"SELECT status, reply FROM {service}.inbox WHERE message_id = $1", message_id)
            if row is not None:
                found[service] = (row["status"], json.loads(row["reply"]))
        return found
    finally:
        await conn.close()


async def test_an_event_whose_data_is_not_its_model_is_refused_by_every_service_that_registered_it(
    stack: Stack, infra: infra_mod.Infra
) -> None:
    org = f"org-{uuid4().hex[:8]}"
    for type_, services in REGISTERED.items():
        event_id = await publish(infra, type_, {"leadId": 42}, org)

        async def all_answered(services: tuple[str, ...] = services, event_id: str = event_id) -> bool:
            return len(await answers(infra, services, event_id)) == len(services)

        await eventually(all_answered, 15, 0.1, f"every service that registered {type_} to answer it")
        for service, (status, reply) in (await answers(infra, services, event_id)).items():
            assert (status, reply["type"]) == (422, "/problems/validation"), (service, reply)
            assert "data.leadId" in {e["field"] for e in reply["errors"]}, (service, reply)
            assert not stack.processes[service].logged("command.parked", command=type_)
            assert not stack.processes[service].logged("command.retry_scheduled", command=type_)


async def test_a_confirmation_without_sms_is_done_once_and_sends_nothing(stack: Stack, infra: infra_mod.Infra) -> None:
    data = {
        "appointmentId": str(uuid4()),
        "leadId": str(uuid4()),
        "confirmedAt": "2030-01-01T10:00:00Z",
        "confirmedBy": "agent-1",
        "sendSms": False,
        "startsAt": "2030-01-02T10:00:00Z",
    }
    event_id = await publish(infra, "appointments.confirmed", data, f"org-{uuid4().hex[:8]}")

    async def answered() -> bool:
        return bool(await answers(infra, ("sms",), event_id))

    await eventually(answered, 15, 0.1, "the SMS service to answer the confirmation")
    assert (await answers(infra, ("sms",), event_id))["sms"] == (200, {"applied": False})
    conn = await asyncpg.connect(infra.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM sms.sms_messages WHERE command_id = $1", event_id) == 0
    finally:
        await conn.close()
