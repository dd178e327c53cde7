"""The gateway's side of the broker: publish a command or query, wait for its reply.

One connection, one publisher-confirmed channel and one reply queue per gateway
process; replies are matched to waiting requests by correlation id (a per-call
temporary queue costs a declare per request and halves throughput). Events
reach the websockets through the event log instead (stream.py).

The connection is opened in the background and re-opened by aio-pika's robust
connection: while the broker is unreachable, `call` fails fast with
`Unavailable` instead of hanging.
"""
import asyncio
import json
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
)

from shared import logging, topology, tracing
from shared.contracts.envelope import Header
from shared.identity import own_user

log = logging.get("gateway.bus")


class Unavailable(Exception):
    pass


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    replayed: bool


class Bus:
    def __init__(self, url: str, services: list[str], publish_timeout: float, instance: str):
        self._url, self._services, self._publish_timeout = url, services, publish_timeout
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}
        self._waiting: dict[str, asyncio.Future[Answer]] = {}
        self._connector: asyncio.Task[None] | None = None
        self.reply_queue = f"{instance}.replies"
        self.user = own_user(url)  # every message names it (user_id): the services trust it for any organisation

    @property
    def ready(self) -> bool:
        return bool(self._channel and not self._channel.is_closed and self._connection
                    and not self._connection.is_closed and self._exchanges)

    async def start(self) -> None:
        self._connector = asyncio.create_task(self._connect_forever())

    async def stop(self) -> None:
        if self._connector:
            self._connector.cancel()
            with suppress(asyncio.CancelledError):
                await self._connector
        if self._connection:
            await self._connection.close()

    async def _connect_forever(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._connect()
                return
            except (OSError, aio_pika.exceptions.AMQPError, asyncio.TimeoutError) as exc:
                log.warning("bus.connect_failed", error=repr(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _connect(self) -> None:
        connection = await aio_pika.connect_robust(self._url, timeout=self._publish_timeout,
                                                   client_properties={"connection_name": self.reply_queue})
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        for service in self._services:
            await topology.declare_entry(channel, service)
        replies = await channel.declare_queue(self.reply_queue, exclusive=True, auto_delete=True)
        await replies.consume(self._on_reply, no_ack=True)
        self._exchanges = {name: await channel.get_exchange(name) for name in (topology.COMMANDS, topology.QUERIES)}
        self._connection, self._channel = connection, channel
        log.info("bus.connected")

    async def call(self, exchange: str, routing_key: str, body: bytes, *, message_id: str, correlation_id: str,
                   org: str, user: str, wait: float, persistent: bool) -> Answer | None:
        """Publish and wait up to `wait` seconds for the reply; None when none came in time.

        `correlation_id` must be unique among this gateway's calls in flight (a uuid4).
        """
        if not self.ready:
            raise Unavailable("the message broker is not reachable")
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting[correlation_id] = future
        message = aio_pika.Message(
            body, message_id=message_id, correlation_id=correlation_id, reply_to=self.reply_queue, user_id=self.user,
            headers={Header.ORG: org, Header.USER: user, **tracing.carrier()}, content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT if persistent else aio_pika.DeliveryMode.NOT_PERSISTENT,
            expiration=None if persistent else wait,
        )
        try:
            try:
                async with asyncio.timeout(self._publish_timeout):
                    await self._exchanges[exchange].publish(message, routing_key, mandatory=True)
            except TimeoutError:
                # Written but not confirmed in time: it may well be queued. Not a 503 (a client
                # retrying without a key would act twice): the caller answers 202 and the status
                # resource tells what became of it.
                log.warning("bus.confirm_late", routing_key=routing_key)
                return None
            except (aio_pika.exceptions.AMQPError, OSError, RuntimeError) as exc:
                log.warning("bus.publish_failed", routing_key=routing_key, error=repr(exc))
                raise Unavailable("the message broker refused the message") from exc
            try:
                return await asyncio.wait_for(future, wait)
            except TimeoutError:
                return None
        finally:
            self._waiting.pop(correlation_id, None)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._waiting.get(message.correlation_id or "")
        if future is None or future.done():
            return  # the request gave up waiting (it answered 202); the inbox keeps the answer
        try:
            reply = json.loads(message.body)
            replayed = (message.headers or {}).get(Header.REPLAYED) == "true"
            future.set_result(Answer(int(reply["status"]), reply["body"], replayed))
        except (ValueError, KeyError, TypeError) as exc:
            future.set_exception(Unavailable(f"unreadable reply: {exc!r}"))
