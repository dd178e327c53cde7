"""Is a service up and answering? python -m shared.tools.health leads  (exit 0 yes, 1 no)

Asks the service's `<service>.query.health` over the broker, as the gateway's
/readyz does; used as the containers' health check.
"""

import asyncio
import json
import sys
from typing import Any
from uuid import uuid4

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from shared import topology
from shared.contracts.envelope import Header
from shared.identity import own_user
from shared.settings import CommonSettings, load


async def ask(url: str, service: str, timeout: float = 5) -> dict[str, Any] | None:
    connection = await aio_pika.connect(url, timeout=timeout)
    async with connection:
        channel = await connection.channel()
        replies = await channel.declare_queue(exclusive=True, auto_delete=True)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        async def on_reply(message: AbstractIncomingMessage) -> None:
            if not answer.done():
                answer.set_result(json.loads(message.body))

        await replies.consume(on_reply, no_ack=True)
        exchange = await channel.get_exchange(topology.QUERIES)
        await exchange.publish(
            aio_pika.Message(
                b"{}",
                correlation_id=uuid4().hex,
                reply_to=replies.name,
                user_id=own_user(url),
                headers={Header.ORG: "_health", Header.USER: "_health"},
                content_type="application/json",
                expiration=timeout,
            ),
            f"{service}.query.health",
        )
        try:
            return await asyncio.wait_for(answer, timeout)
        except TimeoutError:
            return None


if __name__ == "__main__":
    reply = asyncio.run(ask(load(CommonSettings).amqp_url, sys.argv[1]))
    print(json.dumps(reply))
    sys.exit(0 if reply and reply.get("status") == 200 else 1)
