"""`declare_all` on the real broker: a service's queries queue is a quorum queue (one that survives the loss of a
cluster node, tests/e2e/test_cluster.py), and the classic `<service>.queries` of earlier versions goes once unused."""

from collections.abc import AsyncIterator

import aio_pika
import pytest

from shared import topology
from tests.support import infra as infra_mod


@pytest.fixture
async def own() -> AsyncIterator[infra_mod.Infra]:
    infra = await infra_mod.provision()
    try:
        yield infra
    finally:
        await infra_mod.release(infra)


async def test_the_queries_queue_is_quorum_and_the_retired_classic_one_goes_once_unused(own: infra_mod.Infra) -> None:
    service = topology.ServiceTopology("leads", (0.2,))
    connection = await aio_pika.connect(own.amqp_url)
    async with connection:
        channel = await connection.channel()
        old = await channel.declare_queue("leads.queries", durable=True, arguments={"x-message-ttl": 30_000})

        async def serve(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()

        tag = await old.consume(serve)  # an instance of the old version, still running
        await topology.declare_all(own.amqp_url, service)
        assert "leads.queries" in await infra_mod.queues(own)  # in use: kept
        await old.cancel(tag)
        await topology.declare_all(own.amqp_url, service)
        found = await infra_mod.queues(own)
        assert "leads.queries" not in found and "leads.queries.v2" in found
        again = await connection.channel()
        quorum = await again.declare_queue(
            "leads.queries.v2", durable=True, arguments=service.queries.declare_arguments, passive=True
        )
        assert quorum.name == "leads.queries.v2"
        assert service.queries.declare_arguments["x-queue-type"] == "quorum"
