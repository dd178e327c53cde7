"""Reading the final state: the services' tables, the event log, the sandbox, the broker's queues.

Nothing here judges: `chaos.checker` compares what is read with what the presses asked for.
"""

import asyncio
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import aio_pika
import aiohttp
import asyncpg

from chaos import cluster as cluster_side
from chaos.presses import Press
from chaos.stack import CHAOS_ENV
from shared import event_log
from shared.topology import ServiceTopology
from tests.support.cluster import Cluster

SCHEMAS = ("leads", "bookings", "sms", "proposals", "documents")
RETRY_DELAYS = tuple(float(d) for d in CHAOS_ENV["RETRY_DELAYS"].split(","))


@dataclass
class State:
    counts: dict[tuple[int, int], int] = field(default_factory=dict)  # (press seq, count index) -> rows
    rows: dict[str, list[asyncpg.Record]] = field(default_factory=dict)  # what unexpected effects are looked for in
    outbox: dict[str, int] = field(default_factory=dict)
    parked: list[dict[str, Any]] = field(default_factory=list)
    sms_in_flight: int = 0
    campaigns_in_flight: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)  # the log's records of the org, in order
    texts: list[dict[str, Any]] = field(default_factory=list)  # the sandbox's messages
    queues: dict[str, int] = field(default_factory=dict)  # queue -> messages (ready + unacked)


UNEXPECTED_SQL = {
    "leads": "SELECT name AS claim FROM leads.leads WHERE org_id = $1",
    "status moves": "SELECT command_id AS claim FROM leads.lead_status_history WHERE org_id = $1",
    "appointments": "SELECT title AS claim FROM bookings.appointments WHERE org_id = $1",
    "sms": "SELECT body AS claim, lead_id::text AS lead, command_id FROM sms.sms_messages WHERE org_id = $1",
    "proposals": "SELECT title AS claim FROM proposals.proposals WHERE org_id = $1",
    "payments": "SELECT external_reference AS claim FROM proposals.payments WHERE org_id = $1",
    "contracts": "SELECT proposal_id::text AS claim FROM proposals.contracts WHERE org_id = $1",
    "refunds": "SELECT reason AS claim FROM proposals.refunds WHERE org_id = $1",
    "templates": "SELECT name AS claim FROM sms.sms_templates WHERE org_id = $1",
    "campaigns": "SELECT name AS claim FROM sms.campaigns WHERE org_id = $1",
    "documents": "SELECT filename AS claim FROM documents.documents WHERE org_id = $1",
}
# Campaign targets under way (sending, or due and waiting in a running campaign), and running campaigns with
# nothing left to send (not completed yet). A target deferred by quiet hours, or in a paused campaign, rests.
CAMPAIGNS_IN_FLIGHT = (
    "SELECT (SELECT count(*) FROM sms.campaign_targets t JOIN sms.campaigns c ON c.id = t.campaign_id "
    "        WHERE c.org_id = $1 AND (t.state = 'sending' OR (t.state = 'waiting' AND c.status = 'running' "
    "                                                         AND t.next_at <= now()))) "
    "     + (SELECT count(*) FROM sms.campaigns c WHERE c.org_id = $1 AND c.status = 'running' AND NOT EXISTS "
    "        (SELECT 1 FROM sms.campaign_targets t WHERE t.campaign_id = c.id AND t.state IN ('waiting', 'sending')))"
)


async def read_db(database_url: str, org: str, presses: list[Press], state: State) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for press in presses:
            for i, count in enumerate(press.counts):
                state.counts[(press.seq, i)] = await conn.fetchval(count.sql, org, *count.args)
        for what, sql in UNEXPECTED_SQL.items():
            state.rows[what] = await conn.fetch(sql, org)
        for schema in SCHEMAS:
            state.outbox[schema] = await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox")
            for row in await conn.fetch(f"SELECT message_id, reply::text AS reply FROM {schema}.parked"):
                state.parked.append(
                    {
                        "service": schema,
                        "message_id": row["message_id"],
                        "reason": json.loads(row["reply"]).get("detail", row["reply"]),
                    }
                )
        state.sms_in_flight = await conn.fetchval(
            "SELECT count(*) FROM sms.sms_messages WHERE org_id = $1 AND status IN ('queued', 'sending')", org
        )
        state.campaigns_in_flight = await conn.fetchval(CAMPAIGNS_IN_FLIGHT, org)
    finally:
        await conn.close()


async def read_log(amqp_url: str, org: str, state: State, timeout: float = 60) -> None:
    """The whole event log, up to a marker written now (markers and other organisations' records skipped)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        name = f"chaos-check-{uuid4().hex}"
        await channel.default_exchange.publish(event_log.marker(name), event_log.LOG)
        await channel.set_qos(prefetch_count=1000)
        queue = await channel.get_queue(event_log.LOG, ensure=False)
        done = asyncio.Event()

        async def on(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            if event_log.is_marker(message):
                if message.message_id == name:
                    done.set()
            else:
                event = json.loads(message.body)
                if event.get("org_id") == org:
                    state.events.append({**event, "position": event_log.offset_of(message)})
            await message.ack()

        await queue.consume(on, arguments={"x-stream-offset": "first"})
        await asyncio.wait_for(done.wait(), timeout)


async def read_sandbox(sandbox_url: str, state: State) -> None:
    async with aiohttp.ClientSession() as http, http.get(sandbox_url + "/_sandbox/messages") as response:
        state.texts = (await response.json())["messages"]


async def read_queues(amqp_url: str, vhost: str, state: State, cluster: Cluster | None = None) -> None:
    state.queues = await queue_depths(amqp_url, vhost, cluster)


async def queue_depths(amqp_url: str, vhost: str, cluster: Cluster | None = None) -> dict[str, int]:
    """Every queue of the vhost but the event log, by `rabbitmqctl list_queues` (of a node of the cluster, with
    one); without rabbitmqctl, the services' own queues by passive declares (ready messages only)."""
    if cluster is not None:
        rows = await asyncio.to_thread(cluster_side.depths, cluster, vhost)
        return {q["name"]: int(q["messages"] or 0) for q in rows if q["name"] != event_log.LOG}
    if shutil.which("rabbitmqctl"):
        result = await asyncio.to_thread(
            subprocess.run,
            ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "messages", "--formatter", "json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode == 0:
            return {q["name"]: int(q["messages"] or 0) for q in json.loads(result.stdout) if q["name"] != event_log.LOG}
    depths: dict[str, int] = {}
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        for service in SCHEMAS:
            for spec in ServiceTopology(service, RETRY_DELAYS).all_queues():
                channel = await connection.channel()
                try:
                    queue = await channel.declare_queue(spec.name, passive=True)
                    depths[spec.name] = queue.declaration_result.message_count or 0
                except aio_pika.exceptions.AMQPError:
                    pass
    return depths
