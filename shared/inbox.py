"""The inbox: a command takes effect at most once per message id.

Guarantee: the row (message_id, fingerprint, reply) is written in the same
transaction as the command's effect. So after a commit, any redelivery or
republication of that message id finds the row and gets the stored reply with no
second effect; before the commit, nothing of it exists and the retry runs it anew.

Two deliveries of one id at the same moment: the second INSERT waits on the first
transaction's uncommitted key, then finds the committed row (READ COMMITTED).
"""
import hashlib
import json
from typing import Any

import asyncpg
from pydantic import BaseModel

from shared.contracts.envelope import Reply
from shared.retry import Rejected


def fingerprint(command: str, body: BaseModel) -> str:
    canonical = json.dumps([command, body.model_dump(mode="json")], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class KeyReused(Rejected):
    """A known message id with another body: refused, and (unlike other refusals) not stored."""

    def __init__(self, message_id: str):
        super().__init__(422, "Idempotency key reused",
                         f"message id {message_id} was already used with a different body; nothing was changed",
                         "/problems/idempotency-key-reused")


async def claim(conn: asyncpg.Connection, message_id: str, org_id: str, command: str, print_: str) -> Reply | None:
    """Reserve the id inside the caller's transaction; return the stored reply if it was done.

    Raises `KeyReused` (422) when the id was used with another body or by another organisation.
    """
    inserted = await conn.fetchval(
        "INSERT INTO inbox (message_id, org_id, command, fingerprint) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (message_id) DO NOTHING RETURNING true",
        message_id,
        org_id,
        command,
        print_,
    )
    if inserted:
        return None
    row = await conn.fetchrow("SELECT fingerprint, org_id, status, reply FROM inbox WHERE message_id = $1", message_id)
    if row["fingerprint"] != print_ or row["org_id"] != org_id:
        raise KeyReused(message_id)
    return Reply(status=row["status"], body=row["reply"])


async def complete(conn: asyncpg.Connection, message_id: str, reply: Reply) -> None:
    await conn.execute("UPDATE inbox SET status = $2, reply = $3 WHERE message_id = $1", message_id, reply.status, reply.body)


async def stored_reply(conn: asyncpg.Connection, message_id: str, org_id: str) -> Reply | None:
    """The final answer of a command, if it has one (and belongs to this org)."""
    row = await conn.fetchrow(
        "SELECT status, reply FROM inbox WHERE message_id = $1 AND org_id = $2 AND status IS NOT NULL", message_id, org_id
    )
    return Reply(status=row["status"], body=row["reply"]) if row else None


async def prune(conn: asyncpg.Connection, older_than_hours: float) -> int:
    result = await conn.execute(
        "DELETE FROM inbox WHERE created_at < now() - make_interval(secs => $1)", older_than_hours * 3600
    )
    return int(result.split()[-1])


def as_body(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)
