"""Load demo leads into an empty leads table: python -m services.leads.demo [--org demo]

Leads are created through the service's own handler, with their `leads.created`
events written to the outbox, so every projection hears of them once the service
runs. Does nothing when the table already has leads.
"""

import argparse
import asyncio
import random
from pathlib import Path
from uuid import uuid4

from services.leads.app import LeadsSettings
from services.leads.handlers import LeadHandlers
from shared import db, outbox
from shared.contracts.leads import SERVICE, CreateLead
from shared.messages import Meta
from shared.settings import load

FIRST = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Ken",
    "Frances",
    "Niklaus",
    "Radia",
    "John",
]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson", "Allen", "Wirth"]


async def load_demo(settings: LeadsSettings, org: str, count: int) -> int:
    pool = await db.create_pool(settings.database_url, SERVICE, size=2)
    try:
        await db.migrate(pool, SERVICE, [db.SHARED_MIGRATIONS, Path(__file__).parent / "migrations"])
        handlers, rng = LeadHandlers(settings.phone_default_region), random.Random(7)
        async with db.transaction(pool) as conn:
            if await conn.fetchval("SELECT count(*) FROM leads"):
                return 0
            for i in range(count):
                cmd = CreateLead(name=f"{rng.choice(FIRST)} {rng.choice(LAST)}", phone=f"+1415555{1000 + i:04d}")
                meta = Meta(message_id=f"demo-{uuid4()}", org_id=org, user_id="demo-loader", command="leads.create")
                outcome = await handlers.create(conn, cmd, meta)
                await outbox.add(conn, outcome.events)
        return count
    finally:
        await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--org", default="demo")
    parser.add_argument("--count", type=int, default=36)
    args = parser.parse_args()
    added = asyncio.run(load_demo(load(LeadsSettings), args.org, args.count))
    print(
        f"demo data: {added} leads added for organisation {args.org}" if added else "demo data: leads already present"
    )
