"""The gateway's side of the broker: publish a command or query, wait for its reply.

One connection, one publisher-confirmed channel and one reply queue per gateway
process; replies are matched to waiting requests by correlation id (a per-call
temporary queue costs a declare per request and halves throughput). Events
reach the websockets through the event log instead (stream.py).

The connection is opened in the background and re-opened by aio-pika's robust
connection: while the broker is unreachable, `call` fails fast with
`Unavailable` instead of hanging.

Guarantee: `call` returns only for a message the broker confirmed. A publish not
confirmed within `publish_timeout` is `Unavailable` (a 503 with Retry-After), even
though the broker may have taken it: retrying with the same message id is safe (the
services dedupe on it), while a 202 or 204 for a message the broker may never have
taken could lose it (the status resource would say "accepted" forever; Twilio does
not retry a 204).

    publish ──confirmed──► reply within `wait` ──► Answer;  none ──► None (the caller's 202)
            ──refused, or no confirm in time──► Unavailable
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

from shared import logging, loops, topology, tracing
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
        return bool(
            self._channel
            and not self._channel.is_closed
            and self._connection
            and not self._connection.is_closed
            and self._exchanges
        )

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
            except Exception as exc:
                if loops.unreachable(exc) or isinstance(exc, aio_pika.exceptions.AMQPError | asyncio.TimeoutError):
                    log.warning("bus.connect_failed", error=repr(exc), retry_in=delay)
                else:
                    log.error("bus.connect_failed", error=repr(exc), retry_in=delay, exc_info=exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _connect(self) -> None:
        connection = await aio_pika.connect_robust(
            self._url, timeout=self._publish_timeout, client_properties={"connection_name": self.reply_queue}
        )
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        for service in self._services:
            await topology.declare_entry(channel, service)
        replies = await channel.declare_queue(self.reply_queue, exclusive=True, auto_delete=True)
        await replies.consume(self._on_reply, no_ack=True)
        self._exchanges = {name: await channel.get_exchange(name) for name in (topology.COMMANDS, topology.QUERIES)}
        self._connection, self._channel = connection, channel
        log.info("bus.connected")

    async def call(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        correlation_id: str,
        org: str,
        user: str,
        wait: float,
        persistent: bool,
    ) -> Answer | None:
        """Publish and wait up to `wait` seconds for the reply; None when the broker confirmed the message
        but no reply came in time. Unavailable when the broker is unreachable, refused the message or did not
        confirm it within the publish timeout.

        `correlation_id` must be unique among this gateway's calls in flight (a uuid4).
        """
        if not self.ready:
            raise Unavailable("the message broker is not reachable")
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting[correlation_id] = future
        message = aio_pika.Message(
            body,
            message_id=message_id,
            correlation_id=correlation_id,
            reply_to=self.reply_queue,
            user_id=self.user,
            headers={Header.ORG: org, Header.USER: user, **tracing.carrier()},
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT if persistent else aio_pika.DeliveryMode.NOT_PERSISTENT,
            expiration=None if persistent else wait,
        )
        try:
            try:
                async with asyncio.timeout(self._publish_timeout):
                    await self._exchanges[exchange].publish(message, routing_key, mandatory=True)
            except TimeoutError:
                # Written but not confirmed in time: it may be queued, or lost. Only a retry can tell,
                # and one with the same message id is one command (the services dedupe on it).
                log.warning("bus.confirm_late", routing_key=routing_key, message_id=message_id)
                raise Unavailable(
                    "the message broker did not confirm the request in time; it may or may not "
                    "have arrived: retry with the same Idempotency-Key (one that arrived has no "
                    "second effect)"
                ) from None
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
            return  # the request gave up waiting (202: no reply in time; 503: no confirm); the inbox keeps the answer
        try:
            reply = json.loads(message.body)
            replayed = (message.headers or {}).get(Header.REPLAYED) == "true"
            future.set_result(Answer(int(reply["status"]), reply["body"], replayed))
        except (ValueError, KeyError, TypeError) as exc:
            future.set_exception(Unavailable(f"unreadable reply: {exc!r}"))
