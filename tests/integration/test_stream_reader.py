"""The gateway's reader of the event log (services/gateway/stream.py) on the real broker, its connection
cut under it: a replay says so with a connection error (its screen is then closed 1011 and resumes), it
never just ends; the live reader goes on once the broker is back."""

import asyncio
import json
from uuid import uuid4

import aio_pika
import pytest

from services.gateway.stream import CONNECTION_ERRORS, Reader, Record
from shared import event_log
from tests.support.forward import Forward, via
from tests.support.infra import Infra
from tests.support.stack import eventually, free_port


async def nothing() -> None:
    pass


async def test_a_replay_whose_connection_is_cut_raises_a_connection_error_and_the_reader_goes_on(
    infra: Infra, amqp: aio_pika.abc.AbstractChannel
) -> None:
    broker = Forward(free_port(), infra.amqp_url)
    await broker.open()
    name = f"test.stream.{uuid4().hex[:8]}"
    live: list[Record] = []
    reader = Reader(
        via(infra.amqp_url, broker.port),
        infra.database_url,
        event_log.Retention("1D", 10**8, 10**6),
        name,
        live.append,
        nothing,
    )
    await reader.start()

    async def publish(n: int) -> None:  # straight into the log, as the relays' events arrive there
        body = json.dumps({"org_id": name, "id": f"{name}-{n}", "data": {"n": n}}).encode()
        await amqp.default_exchange.publish(aio_pika.Message(body), event_log.LOG)

    def mine() -> list[int]:
        return [position for position, _, event in live if event and event.get("org_id") == name]

    try:
        await eventually(reader.ready.is_set, 30, what="the reader to find where the log ends")
        for n in range(3):
            await publish(n)
        positions = await eventually(lambda: len(mine()) == 3 and mine(), 30, what="the live reader to read them")
        replay = reader.replay(positions[0])
        assert (await anext(replay))[0] == positions[0]
        await broker.close()  # cut: the replay's channel and the live reader's connection go
        with pytest.raises(CONNECTION_ERRORS):
            async with asyncio.timeout(15):  # (it used to end quietly: its screen then waited for ever)
                async for _ in replay:
                    pass
        await replay.aclose()
        with pytest.raises(ConnectionError):  # a replay asked of a connection that is gone
            await anext(reader.replay(positions[0]))

        await broker.open()
        await publish(3)
        await eventually(lambda: len(mine()) == 4, 30, what="the live reader to go on after the cut")
        assert mine()[-1] > positions[-1]
    finally:
        await reader.stop()
        await broker.close()
