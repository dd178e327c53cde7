"""What a service other than leads knows of leads: its own projection, never the leads tables.

The projection is fed by the `leads.created` events the service subscribes to
(`remember_created`, an event handler). A lead created a moment ago may not have
reached it yet, so `find` asks the leads service over the broker (the
`leads.query.get` query) when its projection has no such lead, and remembers the
answer: a lagging projection is never a 404. Only a lead the leads service does
not know either (or that belongs to another organisation) is None.
"""
from pathlib import Path
from uuid import UUID

import asyncpg
from faststream.rabbit import RabbitBroker

from shared import topology
from shared.contracts.envelope import Event, Header, Reply
from shared.contracts.leads import GetLead, LeadCreated
from shared.db import as_uuid
from shared.messages import Meta, Outcome

MIGRATIONS = Path(__file__).parent / "lead_directory_migrations"
ASK_TIMEOUT_SECONDS = 5


class LeadsUnavailable(Exception):
    """The leads service did not answer: a transient failure, the command is retried."""


async def remember(conn: asyncpg.Connection, org: str, lead_id: str, name: str, phone: str) -> None:
    await conn.execute(
        "INSERT INTO lead_directory (lead_id, org_id, name, phone) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (lead_id) DO NOTHING", lead_id, org, name, phone)


async def remember_created(conn: asyncpg.Connection, event: Event, meta: Meta) -> Outcome:
    """Handler of `leads.created`."""
    lead = LeadCreated.model_validate(event.data)
    await remember(conn, event.org_id, lead.leadId, lead.name, lead.phone)
    return Outcome(Reply(status=200, body={}))


class Directory:
    def __init__(self, broker: RabbitBroker):
        self.broker = broker

    async def find(self, conn: asyncpg.Connection, org: str, lead_id: str) -> asyncpg.Record | None:
        if as_uuid(lead_id) is None:
            return None  # lead ids are uuids: this one names no lead
        row = await self._known(conn, org, lead_id)
        if row is not None:
            return row
        lead = await self._ask_leads(org, lead_id)
        if lead is None:
            return None
        await remember(conn, org, lead["id"], lead["name"], lead["phone"])
        return await self._known(conn, org, lead_id)

    async def _known(self, conn: asyncpg.Connection, org: str, lead_id: str) -> asyncpg.Record | None:
        return await conn.fetchrow("SELECT lead_id::text AS lead_id, org_id, name, phone FROM lead_directory "
                                   "WHERE lead_id = $1 AND org_id = $2", UUID(lead_id), org)

    async def _ask_leads(self, org: str, lead_id: str) -> dict | None:  # type: ignore[type-arg]
        try:
            response = await self.broker.request(
                GetLead(leadId=lead_id).model_dump_json().encode(), exchange=topology.exchange(topology.QUERIES),
                routing_key="leads.query.get", headers={Header.ORG: org}, content_type="application/json",
                timeout=ASK_TIMEOUT_SECONDS)
            answer = await response.decode()
        except TimeoutError as exc:
            raise LeadsUnavailable("the leads service did not answer") from exc
        if answer["status"] == 404:
            return None
        if answer["status"] != 200:
            raise LeadsUnavailable(f"the leads service answered {answer['status']}")
        return answer["body"]["lead"]
