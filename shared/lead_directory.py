"""What a service other than leads knows of leads: its own projection, never the leads tables.

The projection is fed by the `leads.created` events the service subscribes to
(`remember_created`, an event handler). A lead created a moment ago may not have
reached it yet, so `find` asks the leads service over the broker (the
`leads.query.get` query) when its projection has no such lead, and remembers the
answer: a lagging projection is never a 404. Only a lead the leads service does
not know either (or that belongs to another organisation) is None.

`with_status` asks the leads service (the owner of statuses, which no projection
keeps) for every lead of a status, page by page: an SMS campaign's audience.
"""
from pathlib import Path
from uuid import UUID

import asyncpg
from faststream.rabbit import RabbitBroker

from shared import topology
from shared.contracts.envelope import Event, Header, Query, Reply
from shared.contracts.leads import GetLead, LeadCreated, LeadStatus, ListLeads
from shared.db import as_uuid
from shared.messages import Meta, Outcome

MIGRATIONS = Path(__file__).parent / "lead_directory_migrations"
ASK_TIMEOUT_SECONDS = 5
PAGE = 200  # the most leads.query.list gives at once


class LeadsUnavailable(Exception):
    """The leads service did not answer: a transient failure, the command is retried."""


REMEMBER = ("INSERT INTO lead_directory (lead_id, org_id, name, phone, time_zone) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT (lead_id) DO NOTHING")


async def remember(conn: asyncpg.Connection, org: str, lead_id: str, name: str, phone: str,
                   time_zone: str | None = None) -> None:
    await conn.execute(REMEMBER, lead_id, org, name, phone, time_zone)


async def remember_all(conn: asyncpg.Connection, org: str, leads: list[dict]) -> None:  # type: ignore[type-arg]
    """Leads as the leads service gives them (`LeadView`s), in one round trip."""
    if leads:
        await conn.executemany(REMEMBER, [(UUID(lead["id"]), org, lead["name"], lead["phone"], lead.get("timeZone"))
                                          for lead in leads])


async def remember_created(conn: asyncpg.Connection, event: Event, meta: Meta) -> Outcome:
    """Handler of `leads.created`."""
    lead = LeadCreated.model_validate(event.data)
    await remember(conn, event.org_id, lead.leadId, lead.name, lead.phone, lead.timeZone)
    return Outcome(Reply(status=200, body={}))


class Directory:
    def __init__(self, broker: RabbitBroker, user: str):
        """`user`: the service's broker user, named on each question (shared/identity.py)."""
        self.broker, self.user = broker, user

    async def find(self, conn: asyncpg.Connection, org: str, lead_id: str) -> asyncpg.Record | None:
        if as_uuid(lead_id) is None:
            return None  # lead ids are uuids: this one names no lead
        row = await self._known(conn, org, lead_id)
        if row is not None:
            return row
        lead = await self._ask_leads(org, lead_id)
        if lead is None:
            return None
        await remember(conn, org, lead["id"], lead["name"], lead["phone"], lead.get("timeZone"))
        return await self._known(conn, org, lead_id)

    async def with_status(self, org: str, status: LeadStatus, most: int) -> list[dict] | None:  # type: ignore[type-arg]
        """Every lead of `org` in `status` now (the leads service's views), or None when there are more than `most`."""
        leads: dict[str, dict] = {}  # type: ignore[type-arg]
        cursor = None
        while True:
            answer = await self._ask(ListLeads(status=status, limit=PAGE, cursor=cursor), org)
            if answer["status"] != 200:
                raise LeadsUnavailable(f"the leads service answered {answer['status']}")
            leads.update((lead["id"], lead) for lead in answer["body"]["leads"])  # a lead moved meanwhile: once
            if len(leads) > most:
                return None
            cursor = answer["body"]["next_cursor"]
            if not cursor:
                return list(leads.values())

    async def _known(self, conn: asyncpg.Connection, org: str, lead_id: str) -> asyncpg.Record | None:
        return await conn.fetchrow("SELECT lead_id::text AS lead_id, org_id, name, phone, time_zone "
                                   "FROM lead_directory WHERE lead_id = $1 AND org_id = $2", UUID(lead_id), org)

    async def _ask(self, query: Query, org: str) -> dict:  # type: ignore[type-arg]
        try:
            response = await self.broker.request(
                query.model_dump_json().encode(), exchange=topology.exchange(topology.QUERIES),
                routing_key=query.ROUTING_KEY, headers={Header.ORG: org}, content_type="application/json",
                timeout=ASK_TIMEOUT_SECONDS, user_id=self.user)
            return await response.decode()  # type: ignore[no-any-return]
        except TimeoutError as exc:
            raise LeadsUnavailable("the leads service did not answer") from exc

    async def _ask_leads(self, org: str, lead_id: str) -> dict | None:  # type: ignore[type-arg]
        answer = await self._ask(GetLead(leadId=lead_id), org)
        if answer["status"] == 404:
            return None
        if answer["status"] != 200:
            raise LeadsUnavailable(f"the leads service answered {answer['status']}")
        return answer["body"]["lead"]
