"""Follow the event log straight from RabbitMQ, from a position of your own (docs/realtime.md).

    python docs/examples/follow_log.py AMQP_URL START_POSITION COUNT

Prints one JSON line per event: {"position", "type", "id", "org_id"}. A subscriber that keeps the last
position it handled and starts again from the one after it misses nothing that the log still holds.
"""
import asyncio
import json
import sys

import aio_pika


async def follow(url: str, start: int, count: int) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()  # a channel of its own for the stream consumer
        await channel.set_qos(prefetch_count=100)  # required for stream consumers
        log = await channel.declare_queue("events.log", passive=True)
        async for message in log.iterator(arguments={"x-stream-offset": start}):  # or "first", "next"
            await message.ack()  # manual acks: on a stream they only grant credit
            if "x-log-marker" in (message.headers or {}):
                continue  # a gateway's marker, not an event
            event = json.loads(message.body)
            position = message.headers["x-stream-offset"]
            print(json.dumps({"position": position, "type": event["type"], "id": event["id"],
                              "org_id": event["org_id"]}), flush=True)
            count -= 1
            if count == 0:
                return


if __name__ == "__main__":
    asyncio.run(follow(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
