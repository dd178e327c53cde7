"""Demo appointments for `make run`: with BOOKINGS_DEMO_ORG set, book the first leads of that
organisation once the leads service answers.

The appointments go through the real path: `bookings.create` commands on the broker,
their message ids made from the lead ids, so running it again books nothing twice.
"""

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
from faststream.rabbit import RabbitBroker

from services.bookings import repository
from shared import logging, topology
from shared.contracts.bookings import CreateAppointment
from shared.contracts.envelope import Header
from shared.contracts.leads import ListLeads

log = logging.get("bookings.demo")


async def first_leads(broker: RabbitBroker, org: str, count: int, user: str) -> list[dict]:
    for _ in range(60):  # the leads service may still be starting
        try:
            response = await broker.request(
                ListLeads(limit=count).model_dump_json().encode(),
                exchange=topology.exchange(topology.QUERIES),
                routing_key="leads.query.list",
                headers={Header.ORG: org},
                timeout=5,
                user_id=user,
            )
            return json.loads(response.body)["body"]["leads"]
        except TimeoutError:
            await asyncio.sleep(2)
    return []


async def book_demo(
    broker: RabbitBroker, pool: Callable[[], asyncpg.Pool], org: str, user: str, count: int = 8
) -> None:
    async with pool().acquire() as conn:
        if await repository.count(conn, org):
            return  # booked on an earlier run (the inbox forgets its ids after a day: don't rely on it)
    tomorrow = datetime.now(UTC).replace(hour=15, minute=0, second=0, microsecond=0) + timedelta(days=1)
    leads = await first_leads(broker, org, count, user)
    for day, lead in enumerate(leads):
        command = CreateAppointment(
            leadId=lead["id"],
            startsAt=tomorrow + timedelta(days=day),
            durationMinutes=30,
            title=f"Intro call with {lead['name']}",
        )
        await broker.publish(
            command.model_dump_json().encode(),
            exchange=topology.exchange(topology.COMMANDS),
            routing_key="bookings.create",
            message_id=f"demo-appointment-{lead['id']}",
            headers={Header.ORG: org, Header.USER: "demo-loader"},
            persist=True,
            content_type="application/json",
            user_id=user,
        )
    log.info("bookings.demo_booked", org_id=org, appointments=len(leads))
