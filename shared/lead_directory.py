"""What a service other than leads knows of leads: its own projection, never the leads tables.

The projection is fed by the `leads.created` events the service subscribes to
(`remember_created`, an event handler). A lead created a moment ago may not have
reached it yet: a lagging projection is never a 404. `find` (and `find_many`) read
only the projection, inside the caller's transaction; a lead it lacks raises
`NeedsLookup`, and the pipeline (shared/consumer.py) rolls back, asks the leads
service with no transaction open (`learn`: `leads.query.get_many`, one question per
page of ids, never one per id), remembers what it knows, and runs the command again.
Only a lead the leads service does not know either (or another organisation's) is
None: that answer is kept a minute (`ABSENT_SECONDS`), so the run after the question
hears it without asking again. Lead ids are made by the leads service and known only
once the lead is committed, so "unknown" does not turn into "known" meanwhile.

    handler tx: find ─ projected ─► row
                     └ unknown ──► NeedsLookup ─► ROLLBACK ─► learn (ask, remember) ─► handler tx again

`with_status` asks the leads service (the owner of statuses, which no projection
keeps) for every lead of a status, page by page: an SMS campaign's audience.
"""

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import asyncpg
from faststream.rabbit import RabbitBroker

from shared import db, topology
from shared.contracts.envelope import Header, Query, Reply
from shared.contracts.leads import GetLeads, LeadCreated, LeadStatus, ListLeads
from shared.db import as_uuid
from shared.messages import Meta, NeedsLookup, Outcome

if TYPE_CHECKING:
    from shared.service import Service

MIGRATIONS = Path(__file__).parent / "lead_directory_migrations"
ASK_TIMEOUT_SECONDS = 5
PAGE = 200  # the most leads.query.list gives at once
LOOKUP_PAGE = 1000  # the most ids one leads.query.get_many asks about
ABSENT_SECONDS = 60.0
ABSENT_KEPT = 50_000


class LeadsUnavailable(Exception):
    """The leads service did not answer: a transient failure, the command is retried."""


REMEMBER = (
    "INSERT INTO lead_directory (lead_id, org_id, name, phone, time_zone) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (lead_id) DO NOTHING"
)


async def remember(
    conn: asyncpg.Connection, org: str, lead_id: str, name: str, phone: str, time_zone: str | None = None
) -> None:
    await conn.execute(REMEMBER, lead_id, org, name, phone, time_zone)


async def remember_all(conn: asyncpg.Connection, org: str, leads: list[dict[str, Any]]) -> None:
    """Leads as the leads service gives them (`LeadView`s), in one round trip."""
    if leads:
        await conn.executemany(
            REMEMBER, [(UUID(lead["id"]), org, lead["name"], lead["phone"], lead.get("timeZone")) for lead in leads]
        )


async def remember_created(conn: asyncpg.Connection, lead: LeadCreated, meta: Meta) -> Outcome:
    """Handler of `leads.created` (its organisation: the event's, `meta.org_id`)."""
    await remember(conn, meta.org_id, lead.leadId, lead.name, lead.phone, lead.timeZone)
    return Outcome(Reply(status=200, body={}))


class Directory:
    def __init__(self, broker: RabbitBroker, user: str, pool: Callable[[], asyncpg.Pool]):
        """`user`: the service's broker user, named on each question (shared/identity.py); `pool`: the service's
        (made once it started), where what the leads service said is remembered."""
        self.broker, self.user, self._pool = broker, user, pool
        self._absent: OrderedDict[tuple[str, str], float] = OrderedDict()  # (org, lead id) unknown, since when

    async def find(self, conn: asyncpg.Connection, org: str, lead_id: str) -> asyncpg.Record | None:
        """The lead, from the projection; None when the leads service does not know it (or it is another
        organisation's); `NeedsLookup` when the projection lacks it and nobody asked yet."""
        if as_uuid(lead_id) is None:
            return None  # lead ids are uuids: this one names no lead
        row = await self._known(conn, org, lead_id)
        if row is not None or self._absent_now(org, lead_id):
            return row
        raise NeedsLookup(f"lead {lead_id}", lambda: self.learn(org, [lead_id]))

    async def find_many(self, conn: asyncpg.Connection, org: str, lead_ids: Sequence[str]) -> set[str]:
        """Which of `lead_ids` (canonical uuids) are the organisation's leads: one query of the projection;
        `NeedsLookup` for all it lacks at once (asked about a page at a time, outside the transaction)."""
        rows = await conn.fetch(
            "SELECT lead_id::text AS lead_id FROM lead_directory WHERE lead_id = ANY($1::uuid[]) AND org_id = $2",
            [UUID(i) for i in lead_ids],
            org,
        )
        known = {r["lead_id"] for r in rows}
        missing = [i for i in lead_ids if i not in known and not self._absent_now(org, i)]
        if missing:
            raise NeedsLookup(f"{len(missing)} leads", lambda: self.learn(org, missing))
        return known

    async def learn(self, org: str, lead_ids: Sequence[str]) -> None:
        """Ask the leads service about `lead_ids` (no transaction open: it may take seconds), remember the leads
        it knows in the projection and, for a minute, that it knows none of the others."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(lead_ids), LOOKUP_PAGE):
            answer = await self._ask(GetLeads(leadIds=list(lead_ids[start : start + LOOKUP_PAGE])), org)
            if answer["status"] != 200:
                raise LeadsUnavailable(f"the leads service answered {answer['status']}")
            found += answer["body"]["leads"]
        if found:
            async with db.transaction(self._pool()) as conn:
                await remember_all(conn, org, found)
        known = {lead["id"] for lead in found}
        now = time.monotonic()
        for lead_id in lead_ids:
            if lead_id not in known:
                self._absent[(org, lead_id)] = now
                self._absent.move_to_end((org, lead_id))
        while len(self._absent) > ABSENT_KEPT:
            self._absent.popitem(last=False)

    def _absent_now(self, org: str, lead_id: str) -> bool:
        since = self._absent.get((org, lead_id))
        return since is not None and time.monotonic() - since < ABSENT_SECONDS

    async def with_status(self, org: str, status: LeadStatus, most: int) -> list[dict[str, Any]] | None:
        """Every lead of `org` in `status` now (the leads service's views), or None when there are more than `most`.
        Asked page by page: never call it inside a transaction."""
        leads: dict[str, dict[str, Any]] = {}
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
        return await conn.fetchrow(
            "SELECT lead_id::text AS lead_id, org_id, name, phone, time_zone "
            "FROM lead_directory WHERE lead_id = $1 AND org_id = $2",
            UUID(lead_id),
            org,
        )

    async def _ask(self, query: Query, org: str) -> dict[str, Any]:
        try:
            response = await self.broker.request(
                query.model_dump_json().encode(),
                exchange=topology.exchange(topology.QUERIES),
                routing_key=query.ROUTING_KEY,
                headers={Header.ORG: org},
                content_type="application/json",
                timeout=ASK_TIMEOUT_SECONDS,
                user_id=self.user,
            )
            return cast(dict[str, Any], await response.decode())  # a `Reply`, as every query is answered
        except TimeoutError as exc:
            raise LeadsUnavailable("the leads service did not answer") from exc


def of(service: "Service") -> Directory:
    """The directory of a service: asks as its broker user, remembers in its database."""
    return Directory(service.broker, service.own_user, lambda: service.pool)
