"""A test's own view of the broker: publish commands straight to `commands`,
collect their replies, and record every event published on `events`."""

import asyncio
import json
from dataclasses import dataclass, field
from uuid import uuid4

import aio_pika
from aio_pika.abc import HeadersType

from shared.contracts.envelope import Header
from shared.identity import own_user
from tests.support.stack import eventually


@dataclass
class Reply:
    status: int
    body: dict
    headers: dict


@dataclass
class Probe:
    channel: aio_pika.abc.AbstractChannel
    reply_queue: str = ""
    replies: dict[str, list[Reply]] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    broker_user: str = "guest"  # the user of `channel`'s connection

    async def start(self) -> "Probe":
        replies = await self.channel.declare_queue(f"test.replies.{uuid4().hex[:8]}", exclusive=True, auto_delete=True)
        await replies.consume(self._on_reply, no_ack=True)
        self.reply_queue = replies.name
        events = await self.channel.declare_queue(f"test.events.{uuid4().hex[:8]}", exclusive=True, auto_delete=True)
        await events.bind("events", "#")
        await events.consume(self._on_event, no_ack=True)
        return self

    async def _on_reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        data = json.loads(message.body)
        self.replies.setdefault(message.correlation_id or "", []).append(
            Reply(data["status"], data["body"], dict(message.headers or {}))
        )

    async def _on_event(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.events.append(json.loads(message.body))

    async def send(
        self,
        routing_key: str,
        body: dict | bytes,
        *,
        org: str,
        user: str = "agent-1",
        message_id: str | None = None,
        correlation_id: str | None = None,
        broker_user: str | None = "",
    ) -> str:
        """Publish a command the way any platform process would (as this connection's broker user: the
        `user_id` RabbitMQ checks; None: no user_id); returns the correlation id."""
        correlation_id = correlation_id or uuid4().hex
        headers: HeadersType = {Header.ORG: org, Header.USER: user} if org else {Header.USER: user}
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        exchange = await self.channel.get_exchange("commands")
        await exchange.publish(
            aio_pika.Message(
                payload,
                message_id=message_id,
                correlation_id=correlation_id,
                reply_to=self.reply_queue,
                headers=headers,
                user_id=self.broker_user if broker_user == "" else broker_user,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key,
        )
        return correlation_id

    async def reply(self, correlation_id: str, count: int = 1, timeout: float = 15) -> list[Reply]:
        await eventually(
            lambda: len(self.replies.get(correlation_id, [])) >= count,
            timeout,
            what=f"{count} replies to {correlation_id}",
        )
        return self.replies[correlation_id]

    def events_of(self, org: str, type_: str | None = None, lead_id: str | None = None) -> list[dict]:
        return [
            e
            for e in self.events
            if e["org_id"] == org
            and (type_ is None or e["type"] == type_)
            and (lead_id is None or e["data"].get("leadId") == lead_id)
        ]

    async def barrier(self, org: str) -> None:
        """Wait until every event committed before now has been published.

        The outbox relay publishes rows in commit-id order, so once the event of a
        fresh marker command arrives, all earlier events (and any re-publication of
        them) have arrived too: asserting "exactly one" after this cannot miss a late one.
        """
        correlation_id = await self.send(
            "leads.create", {"name": "Barrier", "phone": "+14155550199"}, org=org, message_id=uuid4().hex
        )
        (reply,) = await self.reply(correlation_id)
        marker = reply.body["lead"]["id"]
        await eventually(lambda: self.events_of(org, "leads.created", marker), 15, what="the barrier event")


async def publish_as(
    url: str, routing_key: str, body: dict, org: str | None = None, user_id: str | None = "own"
) -> dict:
    """A command published on a connection of its own as the user of `url` (an integrating system; `user_id`
    "own": that user, as RabbitMQ requires; None: none), with a reply queue of its own; its reply."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        replies = await channel.declare_queue("", exclusive=True)
        answer: asyncio.Future[dict] = asyncio.get_running_loop().create_future()

        async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            if not answer.done():
                answer.set_result(json.loads(message.body))

        await replies.consume(on_reply, no_ack=True)
        headers: HeadersType = {Header.USER: "sync-job", **({Header.ORG: org} if org else {})}
        message = aio_pika.Message(
            json.dumps(body).encode(),
            headers=headers,
            message_id=str(uuid4()),
            correlation_id="c",
            reply_to=replies.name,
            content_type="application/json",
            user_id=own_user(url) if user_id == "own" else user_id,
        )
        await (await channel.get_exchange("commands", ensure=False)).publish(message, routing_key)
        return await asyncio.wait_for(answer, 20)
