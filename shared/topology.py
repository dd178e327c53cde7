"""RabbitMQ topology, declared from one place by everyone who needs it.

    producer ──► [commands] topic ──leads.*──► leads.commands (quorum)  ◄──────┐
    (the event types a service registers are bound to its work queue from [events])
                                                   │ transient failure        │ TTL expires,
                                                   ▼                          │ dead-lettered back
                                  default exchange ──► leads.delay.<ms> (quorum, TTL) ──┘
                                                   │ attempts exhausted
                                                   ▼
                                               leads.parked (quorum; listed, replayed, purged by hand)
    gateway ───► [queries] topic ──leads.#──► leads.queries.v2 (quorum, messages expire)
    outbox relay ──► [events] topic ──► each subscriber's own queue

Exchanges and the queues of a service are declared by the service and by the
gateway (the same arguments, from here), so a command sent while the service has
never run is still queued, not dropped.

The events a service consumes are bound to its work queue, so an event gets the
same inbox (dedupe on the event id), retry and parking as a command. Who consumes
what is said once, by the service's `Service.event` registrations; the service binds
them when it declares its topology at start (`declare_all`), and the gateway, which
knows no handlers, declares the queues only. So a service's event bindings exist from
its first start on (durable, like the queue: a restart or an outage loses none); an
event published before that first start is not kept for it. What that costs the lead
directories (`leads.created`) heals anyway: a lead they lack is asked for through
`leads.query.get_many` (shared/lead_directory.py). A binding a service no longer
registers stays until removed by hand; what it brings is refused 422 as an unknown type.
"""

from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

COMMANDS = "commands"
EVENTS = "events"
QUERIES = "queries"
EXCHANGES = (COMMANDS, EVENTS, QUERIES)
QUERY_TTL_MS = 30_000


@dataclass(frozen=True)
class QueueSpec:
    name: str
    quorum: bool = True
    arguments: dict[str, Any] = field(default_factory=dict)
    exchange: str | None = None
    binding: str = ""

    @property
    def declare_arguments(self) -> dict[str, Any]:
        return {"x-queue-type": "quorum" if self.quorum else "classic", **self.arguments}

    def faststream(self) -> RabbitQueue:
        # FastStream's overloads type each queue type's arguments apart (TypedDicts); ours are one dict.
        return RabbitQueue(  # type: ignore[call-overload]  # (see above)
            self.name,
            queue_type=QueueType.QUORUM if self.quorum else QueueType.CLASSIC,
            durable=True,
            arguments=dict(self.arguments),
            routing_key=self.binding,
        )

    async def declare(self, channel: aio_pika.abc.AbstractChannel) -> aio_pika.abc.AbstractQueue:
        queue = await channel.declare_queue(self.name, durable=True, arguments=self.declare_arguments)
        if self.exchange:
            await queue.bind(self.exchange, self.binding)
        return queue


@dataclass(frozen=True)
class ServiceTopology:
    """The queues one service owns."""

    service: str
    retry_delays: tuple[float, ...]

    @property
    def work(self) -> QueueSpec:
        return QueueSpec(f"{self.service}.commands", exchange=COMMANDS, binding=f"{self.service}.*")

    @property
    def queries(self) -> QueueSpec:
        # Quorum like the others: on a cluster, a classic durable queue whose node is down cannot be declared
        # again, and every service and gateway declares it when it (re)connects (tests/e2e/test_cluster.py).
        # A new name, for a queue's type cannot change: `<service>.queries` (classic) is dropped once unused.
        return QueueSpec(
            f"{self.service}.queries.v2",
            arguments={"x-message-ttl": QUERY_TTL_MS},
            exchange=QUERIES,
            binding=f"{self.service}.#",
        )

    @property
    def retired(self) -> list[str]:
        """Queues this service's earlier versions declared: deleted by `declare_all` once nobody consumes them
        (an instance of the old version still running keeps its own until it stops)."""
        return [f"{self.service}.queries"]

    @property
    def parked(self) -> QueueSpec:
        return QueueSpec(f"{self.service}.parked")

    def delay(self, tier: int) -> QueueSpec:
        # Messages carry a jittered expiration below this TTL; the TTL is the cap.
        # Named after the delay, so changing the tiers declares new queues instead
        # of clashing with the arguments of the old ones.
        # Quorum, dead-lettering at least once: a message is removed from here only once the work
        # queue has taken it. Classic delay queues (`<service>.retry.<ms>ms` before) dead-letter at
        # most once: every retry waiting in them when the broker stopped was lost (`make chaos`).
        delay_ms = int(self.retry_delays[tier] * 1000)
        ttl_ms = int(delay_ms * 1.25)
        return QueueSpec(
            f"{self.service}.delay.{delay_ms}ms",
            arguments={
                "x-message-ttl": ttl_ms,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.work.name,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )

    def entry_queues(self) -> list[QueueSpec]:
        """What must exist for a message sent to the service to wait for it."""
        return [self.work, self.queries, self.parked]

    def all_queues(self) -> list[QueueSpec]:
        return [*self.entry_queues(), *(self.delay(i) for i in range(len(self.retry_delays)))]


def exchange(name: str) -> RabbitExchange:
    return RabbitExchange(name, type=ExchangeType.TOPIC, durable=True)


async def declare_exchanges(channel: aio_pika.abc.AbstractChannel) -> None:
    for name in EXCHANGES:
        await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)


async def declare_all(url: str, topology: ServiceTopology, events: Iterable[str] = ()) -> None:
    """Everything a service consumes from or publishes to, before it consumes anything: a retry must never
    be published to a delay queue that does not exist yet. `events`: the event types it registered, bound
    to its work queue."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await declare_exchanges(channel)
        for spec in topology.all_queues():
            queue = await spec.declare(channel)
            if spec == topology.work:
                for event_type in events:
                    await queue.bind(EVENTS, event_type)
        for name in topology.retired:
            with suppress(aio_pika.exceptions.AMQPError):  # in use (the refusal closes the channel), or unreachable
                await (await connection.channel()).queue_delete(name, if_unused=True, if_empty=False)


async def declare_entry(channel: aio_pika.abc.AbstractChannel, service: str) -> None:
    """What the gateway declares for a service it routes to: its queues (its event bindings are its own)."""
    await declare_exchanges(channel)
    for spec in ServiceTopology(service, ()).entry_queues():
        await spec.declare(channel)
