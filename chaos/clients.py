"""The two ways a press comes in: through the gateways (crm_client's HTTP core, failing over) and
straight through the broker (an integrating system: publish, wait for the reply, publish again).

    gateway press ──► crm_client Http.command on gateway A (retries, backoff, Retry-After, 202 followed;
                     ONE key) ──Unreachable / StillAccepted──► the same key on gateway B ──► ... until the deadline
    broker press  ──► publish (confirmed) with its message id ──no reply in time──► publish again, same id
                     (a reply queue lost with the broker is declared again on the next connection)

Either ends with the final answer (status, body), or `Unresolved` at the deadline.
"""

import asyncio
import contextlib
import json
import random
import time
from typing import Any

import aio_pika
from crm_client.errors import Refused, ServerError, StillAccepted, Unreachable
from crm_client.http import Http, RetryPolicy

from chaos.presses import Press
from shared.contracts.envelope import Header
from shared.identity import own_user
from shared.topology import COMMANDS

# One call on one gateway: a few quick retries, then the other gateway is tried (the driver's failover).
POLICY = RetryPolicy(
    attempts=4, total_time=8.0, backoff=0.2, backoff_max=2.0, request_timeout=20.0, follow_time=20.0, poll_max=1.0
)


class Unresolved(Exception):
    """No final answer before the deadline: the press may or may not have taken effect."""


class Gateways:
    """For each user, the client's HTTP core on each gateway; a user's presses start on alternating gateways."""

    def __init__(self, urls: list[str], tokens: dict[str, str]):
        self.clients = {user: [Http(url, token, POLICY) for url in urls] for user, token in tokens.items()}

    async def open(self) -> None:
        for pair in self.clients.values():
            for http in pair:
                await http.open()

    async def close(self) -> None:
        for pair in self.clients.values():
            for http in pair:
                await http.close()

    async def send(self, press: Press, deadline: float) -> tuple[int, Any]:
        pair = self.clients[press.user]
        turn = press.seq % len(pair)
        data = None if press.file else json.dumps(press.operation.body).encode()
        while True:
            press.sends += 1
            try:
                answer = await pair[turn].command(press.operation.path, data, press.key, file=press.file)
                return answer.status, answer.body
            except (Refused, ServerError) as exc:
                return exc.status, exc.problem
            except (Unreachable, StillAccepted):
                if time.monotonic() > deadline:
                    raise Unresolved(press.key) from None
                press.failovers += 1
                turn = (turn + 1) % len(pair)


class Broker:
    """A system on the broker: commands to `commands`, replies on a queue of its own."""

    def __init__(self, amqp_url: str):
        self.url = amqp_url
        self.broker_user = own_user(amqp_url)
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self.exchange: aio_pika.abc.AbstractExchange | None = None
        self.reply_to = ""
        self.waiting: dict[str, asyncio.Future[tuple[int, Any]]] = {}
        self.errors: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self._failed_at = 0.0

    async def _ready(self) -> aio_pika.abc.AbstractExchange:
        async with self._lock:
            if self.connection is None or self.connection.is_closed or self.exchange is None:
                if time.monotonic() - self._failed_at < 0.5:  # one attempt to connect at a time, not one per press
                    raise ConnectionError("the broker was unreachable a moment ago")
                self._failed_at = time.monotonic()
                if self.connection is not None:
                    await _quietly(self.connection.close())
                self.connection = await aio_pika.connect(self.url, timeout=5)
                channel = await self.connection.channel()  # publisher confirms
                replies = await channel.declare_queue(exclusive=True, auto_delete=True)
                await replies.consume(self._on_reply, no_ack=True)
                self.reply_to = replies.name
                self.exchange = await channel.get_exchange(COMMANDS, ensure=False)
                self._failed_at = 0.0
            return self.exchange

    async def _on_reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        waiting = self.waiting.get(message.correlation_id or "")
        if waiting is not None and not waiting.done():
            data = json.loads(message.body)
            waiting.set_result((data["status"], data["body"]))

    async def publish(self, press: Press, reply: bool) -> None:
        exchange = await self._ready()
        message = aio_pika.Message(
            press.body_json(),
            message_id=press.message_id,
            content_type="application/json",
            correlation_id=press.key if reply else f"copy-{press.key}",
            reply_to=self.reply_to if reply else None,
            headers={Header.ORG: press.org, Header.USER: press.user},
            user_id=self.broker_user,  # a platform user, as RabbitMQ checks (shared/identity.py)
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await exchange.publish(message, press.command.ROUTING_KEY, timeout=5)

    async def _lost(self, exc: Exception) -> None:
        self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
        async with self._lock:
            self.exchange = None  # a channel or connection that failed is made again

    async def send(self, press: Press, deadline: float) -> tuple[int, Any]:
        answer = self.waiting.setdefault(press.key, asyncio.get_running_loop().create_future())
        wait = 4.0
        while True:
            if answer.done():
                return answer.result()
            press.sends += 1
            try:
                await self.publish(press, reply=True)
                return await asyncio.wait_for(asyncio.shield(answer), wait)
            except TimeoutError:
                pass  # no reply yet: the service may be down, or the reply was lost with a connection
            except Exception as exc:  # noqa: BLE001 - any broker failure: connect again and publish again
                await self._lost(exc)
            if time.monotonic() > deadline:
                raise Unresolved(press.key)
            await asyncio.sleep(random.uniform(0.1, 1.0))
            wait = min(wait * 2, 20.0)

    async def copy(self, press: Press, deadline: float) -> None:
        """The same command once more, straight to `commands` (a duplicated delivery, on purpose)."""
        while time.monotonic() < deadline:
            try:
                await self.publish(press, reply=False)
                press.dup_copies += 1
                return
            except Exception as exc:  # noqa: BLE001
                await self._lost(exc)
                await asyncio.sleep(random.uniform(0.2, 1.0))

    async def close(self) -> None:
        if self.connection is not None:
            await _quietly(self.connection.close())


async def _quietly(awaitable: Any) -> None:
    with contextlib.suppress(Exception):  # closing what is already broken
        await awaitable
