"""Floor, the consumer: the status change behind a broker, with none of our guarantees.

A FastStream (RabbitMQ) consumer on the quorum queue `bench.floor.commands`, fed by `bench.floor`.
For each message, in one transaction, `bench.baseline.change_status` (lock the lead, check the move
with the service's domain rules, update it, insert its history row); then the answer
{"status", "body"} to the message's reply_to with its correlation id (FastStream replies with what
the handler returns), then the ack. A refusal (unknown lead, a move the rules forbid) is answered
like the baseline's.

32 at once: FastStream 0.7's RabbitMQ subscriber has no worker-pool setting; the client (aiormq)
runs every delivered message in a task of its own, so the channel's prefetch is how many are
handled at once, as in the services (their PREFETCH, default 32).

What is not here, on purpose: no inbox (a redelivered command is applied again), no outbox and no
events, no retries or parking (an unexpected error rejects the message unanswered: the caller
times out). Replies are published without confirms, as the services publish theirs.

Run: python -m bench.floor_worker, with DATABASE_URL and AMQP_URL.
"""

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Any

import asyncpg
from faststream import FastStream
from faststream.rabbit import Channel, QueueType, RabbitBroker, RabbitQueue
from pydantic import BaseModel

from bench.baseline import POOL_SIZE, change_status
from services.gateway.auth import Principal
from shared import db
from shared.contracts.leads import UpdateLeadStatus
from shared.problems import Rejected

QUEUE = "bench.floor.commands"  # not a name of the services' topology (shared/topology.py)
PREFETCH = 32


class FloorCommand(BaseModel):
    """What the floor's gateway sends: the command, and who pressed it (from the token it checked)."""

    org: str
    user: str
    command: UpdateLeadStatus


@dataclass
class Floor:
    database_url: str
    pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self.pool = await db.create_pool(self.database_url, "leads", size=POOL_SIZE)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def update_status(self, body: FloorCommand) -> dict[str, Any]:
        assert self.pool is not None  # (opened before the broker starts consuming)
        try:
            lead = await change_status(self.pool, Principal(body.user, body.org), body.command)
        except Rejected as exc:
            return {"status": exc.status, "body": exc.body}
        return {"status": 200, "body": {"lead": lead}}


def init_app(amqp_url: str, database_url: str) -> FastStream:
    # FastStream's per-message lines at DEBUG, under a WARNING logger: not written, as in the services.
    log = logging.getLogger("bench.floor_worker")
    floor = Floor(database_url)
    broker = RabbitBroker(
        amqp_url, default_channel=Channel(publisher_confirms=False), logger=log, log_level=logging.DEBUG
    )

    @broker.subscriber(RabbitQueue(QUEUE, queue_type=QueueType.QUORUM), channel=Channel(prefetch_count=PREFETCH))
    async def update_status(body: FloorCommand) -> dict[str, Any]:
        return await floor.update_status(body)

    return FastStream(broker, logger=log, on_startup=[floor.open], after_shutdown=[floor.close])


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(init_app(os.environ["AMQP_URL"], os.environ["DATABASE_URL"]).run(log_level=logging.DEBUG))
