"""RabbitMQ topology, declared from one place by everyone who needs it.

    producer ──► [commands] topic ──leads.*──► leads.commands (quorum)  ◄──────┐
    (a service's subscribed event types are bound to its work queue from [events])
                                                   │ transient failure        │ TTL expires,
                                                   ▼                          │ dead-lettered back
                                  default exchange ──► leads.delay.<ms> (quorum, TTL) ──┘
                                                   │ attempts exhausted
                                                   ▼
                                               leads.parked (quorum; listed, replayed, purged by hand)
    gateway ───► [queries] topic ──leads.#──► leads.queries (classic, messages expire)
    outbox relay ──► [events] topic ──► each subscriber's own queue

Exchanges and the queues of a service are declared by the service and by the
gateway (the same arguments, from here), so a command sent while the service has
never run is still queued, not dropped.
"""
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

from shared.contracts.bookings import AppointmentConfirmed
from shared.contracts.leads import LeadCreated
from shared.contracts.proposals import ProposalAccepted, ProposalDeclined, ProposalSent

COMMANDS = "commands"
EVENTS = "events"
QUERIES = "queries"
EXCHANGES = (COMMANDS, EVENTS, QUERIES)
QUERY_TTL_MS = 30_000

# The events each service consumes. They are bound to its work queue, so an event
# gets the same inbox (dedupe on the event id), retry and parking as a command.
# Declared by the service and by the gateway, so none is lost before the service first runs.
# A service's `Service.event` registrations must match its entry (checked when it starts).
SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "leads": (ProposalSent.TYPE, ProposalAccepted.TYPE, ProposalDeclined.TYPE),
    "bookings": (LeadCreated.TYPE,),
    "sms": (LeadCreated.TYPE, AppointmentConfirmed.TYPE),
    "proposals": (LeadCreated.TYPE,),
    "documents": (LeadCreated.TYPE,),
}


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
        queue_type = QueueType.QUORUM if self.quorum else QueueType.CLASSIC
        return RabbitQueue(
            self.name, queue_type=queue_type, durable=True, arguments=dict(self.arguments), routing_key=self.binding
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
        return QueueSpec(
            f"{self.service}.queries",
            quorum=False,
            arguments={"x-message-ttl": QUERY_TTL_MS},
            exchange=QUERIES,
            binding=f"{self.service}.#",
        )

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
            arguments={"x-message-ttl": ttl_ms, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": self.work.name,
                       "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"},
        )

    @property
    def subscriptions(self) -> tuple[str, ...]:
        return SUBSCRIPTIONS.get(self.service, ())

    async def bind_subscriptions(self, queue: aio_pika.abc.AbstractQueue) -> None:
        for event_type in self.subscriptions:
            await queue.bind(EVENTS, event_type)

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


async def declare_all(url: str, topology: ServiceTopology) -> None:
    """Everything a service consumes from or publishes to, before it consumes anything:
    a retry must never be published to a delay queue that does not exist yet."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await declare_exchanges(channel)
        for spec in topology.all_queues():
            queue = await spec.declare(channel)
            if spec == topology.work:
                await topology.bind_subscriptions(queue)


async def declare_entry(channel: aio_pika.abc.AbstractChannel, service: str) -> None:
    """What the gateway declares for a service it routes to."""
    await declare_exchanges(channel)
    topology = ServiceTopology(service, ())
    for spec in topology.entry_queues():
        queue = await spec.declare(channel)
        if spec == topology.work:
            await topology.bind_subscriptions(queue)
