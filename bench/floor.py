"""Floor, the gateway: the architecture's floor, our shape with none of our guarantees.

A plain aiohttp app, one process like the gateway and `bench.baseline`. POST /update-status checks
the bearer token and the body as the baseline does, then asks the consumer (`bench.floor_worker`)
over RabbitMQ and answers what it replied, the same JSON as the baseline:

    POST ─► publish {org, user, command} to bench.floor.commands (quorum; persistent, publisher-confirmed)
         ─► wait for the reply on this process's exclusive reply queue, matched by correlation id
         ─► 200 {"lead": {id, status, status_changed_at}}, or the refusal's status and problem body

One connection, one confirmed channel and one reply queue, as the gateway's bus
(services/gateway/bus.py): what a hand-written RPC over the broker costs. Not here: message ids and
their dedupe (an Idempotency-Key), a 202 for a late reply (a 504 instead), reconnection, events.

Run: python -m bench.floor, with AMQP_URL, JWT_SECRET and FLOOR_PORT.
"""

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from aiohttp import web

from bench.baseline import SECRET, checked, healthz
from bench.floor_worker import QUEUE, FloorCommand

REPLY_WAIT = 10.0  # s; well under the bench's request timeout, so that a lost reply is a 504, not a client timeout
Answer = tuple[int, Any]  # (HTTP status, JSON body)


class Rpc:
    """Publish a command, wait for its reply."""

    def __init__(self, connection: AbstractConnection, channel: AbstractChannel):
        self._connection, self._channel = connection, channel
        self._waiting: dict[str, asyncio.Future[Answer]] = {}
        self._reply_to = ""

    @classmethod
    async def open(cls, amqp_url: str) -> "Rpc":
        connection = await aio_pika.connect(amqp_url)
        channel = await connection.channel(publisher_confirms=True)
        # Declared by both sides (the same arguments): a command sent before the consumer started waits for it.
        await channel.declare_queue(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        replies = await channel.declare_queue(exclusive=True, auto_delete=True)  # named by the broker
        rpc = cls(connection, channel)
        rpc._reply_to = replies.name
        await replies.consume(rpc._on_reply, no_ack=True)
        return rpc

    async def close(self) -> None:
        await self._connection.close()

    async def call(self, body: bytes) -> Answer:
        """Publish (returns once the broker confirmed it) and wait up to REPLY_WAIT s for the reply."""
        correlation_id = uuid4().hex
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting[correlation_id] = future
        message = aio_pika.Message(
            body,
            correlation_id=correlation_id,
            reply_to=self._reply_to,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            await self._channel.default_exchange.publish(message, routing_key=QUEUE)
            return await asyncio.wait_for(future, REPLY_WAIT)
        finally:
            self._waiting.pop(correlation_id, None)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._waiting.get(message.correlation_id or "")
        if future is not None and not future.done():
            reply = json.loads(message.body)
            future.set_result((int(reply["status"]), reply["body"]))


RPC = web.AppKey("rpc", Rpc)


async def update_status(request: web.Request) -> web.Response:
    who, cmd = await checked(request)
    body = FloorCommand(org=who.org, user=who.user, command=cmd).model_dump_json().encode()
    try:
        status, answer = await request.app[RPC].call(body)
    except TimeoutError:
        return web.json_response({"status": 504, "detail": "no reply in time"}, status=504)
    return web.json_response(answer, status=status)


def init_app(amqp_url: str, secret: str) -> web.Application:
    app = web.Application()
    app[SECRET] = secret

    async def rpc(app: web.Application) -> AsyncIterator[None]:
        app[RPC] = await Rpc.open(amqp_url)
        yield
        await app[RPC].close()

    app.cleanup_ctx.append(rpc)
    app.router.add_post("/update-status", update_status)
    app.router.add_get("/healthz", healthz)
    return app


if __name__ == "__main__":
    web.run_app(
        init_app(os.environ["AMQP_URL"], os.environ["JWT_SECRET"]),
        host="127.0.0.1",
        port=int(os.environ["FLOOR_PORT"]),
        print=None,
        access_log=None,
    )
