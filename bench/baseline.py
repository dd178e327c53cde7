"""Baseline: the same status change straight on PostgreSQL, no broker.

A plain aiohttp app, one process like the gateway. POST /update-status checks the
bearer token and the body as the gateway does, then in one transaction locks the
lead (SELECT ... FOR UPDATE), checks the move with the service's domain rules,
updates leads.leads (status, status_changed_at), inserts a
leads.lead_status_history row, and answers {"lead": {id, status,
status_changed_at}} like the pipeline. No inbox, no outbox, no events: what is
left is HTTP + JSON + JWT + the business transaction.

Run: python -m bench.baseline, with DATABASE_URL, JWT_SECRET and BASELINE_PORT.
"""

import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from aiohttp import web
from pydantic import ValidationError

from services.gateway.auth import BadToken, Principal, decode
from services.leads import domain
from shared import db
from shared.contracts.leads import LeadStatus, UpdateLeadStatus
from shared.db import as_uuid
from shared.problems import Rejected, not_found

POOL = web.AppKey("pool", asyncpg.Pool)
SECRET = web.AppKey("secret", str)
POOL_SIZE = 10  # the leads service's default DB_POOL_SIZE


async def change_status(pool: asyncpg.Pool, who: Principal, cmd: UpdateLeadStatus) -> dict[str, Any]:
    """Lock, check, update, record history; return the lead's status view."""
    lead_id = as_uuid(cmd.leadId)
    async with pool.acquire() as conn, conn.transaction():
        row = (
            None
            if lead_id is None
            else await conn.fetchrow(
                "SELECT status FROM leads WHERE id = $1 AND org_id = $2 FOR UPDATE", lead_id, who.org
            )
        )
        if row is None or lead_id is None:  # (no id: no row either)
            raise not_found("lead", cmd.leadId)
        current = LeadStatus(row["status"])
        if domain.check_move(cmd.leadId, current, cmd.status, cmd.expectedStatus):
            await _apply(conn, lead_id, who, str(current), str(cmd.status))
        lead = await conn.fetchrow("SELECT id::text AS id, status, status_changed_at FROM leads WHERE id = $1", lead_id)
    return {"id": lead["id"], "status": lead["status"], "status_changed_at": lead["status_changed_at"].isoformat()}


async def _apply(conn: asyncpg.Connection, lead_id: UUID, who: Principal, previous: str, status: str) -> None:
    now = datetime.now(UTC)
    await conn.execute(
        "UPDATE leads SET status = $3, status_changed_at = $4 WHERE id = $1 AND org_id = $2",
        lead_id,
        who.org,
        status,
        now,
    )
    await conn.execute(
        "INSERT INTO lead_status_history (lead_id, org_id, from_status, to_status, changed_at, changed_by, command_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        lead_id,
        who.org,
        previous,
        status,
        now,
        who.user,
        str(uuid4()),
    )


async def checked(request: web.Request) -> tuple[Principal, UpdateLeadStatus]:
    """The bearer token and the body, checked as the gateway does (the floor's app checks the same way);
    a 401 or 422 {"status", "detail"} raised otherwise."""
    try:
        who = decode(request.headers.get("Authorization", "").removeprefix("Bearer ").strip(), request.app[SECRET])
    except BadToken as exc:
        raise web.HTTPUnauthorized(text=_problem(401, str(exc)), content_type="application/json") from None
    try:
        return who, UpdateLeadStatus.model_validate_json(await request.read())
    except ValidationError as exc:
        raise web.HTTPUnprocessableEntity(text=_problem(422, str(exc)), content_type="application/json") from None


def _problem(status: int, detail: str) -> str:
    return json.dumps({"status": status, "detail": detail})


async def update_status(request: web.Request) -> web.Response:
    who, cmd = await checked(request)
    try:
        return web.json_response({"lead": await change_status(request.app[POOL], who, cmd)})
    except Rejected as exc:
        return web.json_response(exc.body, status=exc.status)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def init_app(database_url: str, secret: str) -> web.Application:
    app = web.Application()
    app[SECRET] = secret

    async def pool(app: web.Application) -> AsyncIterator[None]:
        app[POOL] = await db.create_pool(database_url, "leads", size=POOL_SIZE)
        yield
        await app[POOL].close()

    app.cleanup_ctx.append(pool)
    app.router.add_post("/update-status", update_status)
    app.router.add_get("/healthz", healthz)
    return app


if __name__ == "__main__":
    web.run_app(
        init_app(os.environ["DATABASE_URL"], os.environ["JWT_SECRET"]),
        host="127.0.0.1",
        port=int(os.environ["BASELINE_PORT"]),
        print=None,
        access_log=None,
    )
