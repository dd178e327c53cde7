"""The inbox: a command takes effect at most once per message id.

Guarantee: the row (message_id, fingerprint, reply) is inserted in the same
transaction as the command's effect, as its last write. If the id is already
there, the insert finds it (a concurrent transaction with the same id makes it
wait for that one's commit), the whole transaction is rolled back, and the
stored reply is given instead: no second effect, whether the message was
redelivered, republished, or sent twice at the same moment. A refusal is stored
the same way, so the same command is refused the same way again.

    BEGIN ─ handler (effect + outbox) ─ inbox.record ─┬─ inserted ─► COMMIT
                                                      └─ known id ─► ROLLBACK ─► inbox.stored
"""

import hashlib
import json
from collections.abc import Sequence

import asyncpg
from pydantic import BaseModel

from shared import outbox
from shared.contracts.envelope import Event, Reply
from shared.problems import KeyReused

INSERT = (
    "INSERT INTO inbox (message_id, org_id, command, fingerprint, status, reply) VALUES ($1, $2, $3, $4, $5, $6) "
    "ON CONFLICT (org_id, message_id) DO NOTHING RETURNING true"
)
# With the command's events: their outbox rows in the same statement, numbered after the inbox row's six.
INSERT_WITH_EVENTS = f"WITH events AS ({outbox.insert(7)}) {INSERT}"


class AlreadyDone(Exception):
    """Raised inside the transaction to roll it back: this message id has its answer already."""


def fingerprint(command: str, body: BaseModel) -> str:
    canonical = json.dumps([command, body.model_dump(mode="json")], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def record(
    conn: asyncpg.Connection,
    message_id: str,
    org_id: str,
    command: str,
    print_: str,
    reply: Reply,
    events: Sequence[Event] = (),
    trace: dict[str, str] | None = None,
) -> None:
    """The last write of a command's transaction, with its outbox rows in the same statement (one round
    trip); raises `AlreadyDone` when the id is known (the caller rolls back, outbox rows included)."""
    row = (message_id, org_id, command, print_, reply.status, reply.body)
    if not events:
        inserted = await conn.fetchval(INSERT, *row)
    else:
        inserted = await conn.fetchval(INSERT_WITH_EVENTS, *row, *outbox.rows(events, trace))
    if not inserted:
        raise AlreadyDone(message_id)


async def stored(conn: asyncpg.Connection, message_id: str, org_id: str, print_: str) -> Reply:
    """The answer recorded for a known id; `KeyReused` when it came with another body."""
    row = await conn.fetchrow(
        "SELECT fingerprint, status, reply FROM inbox WHERE org_id = $1 AND message_id = $2", org_id, message_id
    )
    if row["fingerprint"] != print_:
        raise KeyReused(message_id)
    return Reply(status=row["status"], body=row["reply"])


async def stored_reply(conn: asyncpg.Connection, message_id: str, org_id: str) -> Reply | None:
    """The final answer of a command, if it has one (and belongs to this org): its inbox row,
    else the failure it was parked with (until a replay gives it an inbox row)."""
    row = await conn.fetchrow(
        "SELECT 0 AS rank, status, reply FROM inbox WHERE message_id = $1 AND org_id = $2 UNION ALL "
        "SELECT 1, 503, reply FROM parked WHERE message_id = $1 AND org_id = $2 ORDER BY rank LIMIT 1",
        message_id,
        org_id,
    )
    return Reply(status=row["status"], body=row["reply"]) if row else None


async def park(conn: asyncpg.Connection, message_id: str, org_id: str, reply: Reply) -> None:
    await conn.execute(
        "INSERT INTO parked (message_id, org_id, reply) VALUES ($1, $2, $3) "
        "ON CONFLICT (org_id, message_id) DO UPDATE SET reply = excluded.reply, parked_at = now()",
        message_id,
        org_id,
        reply.body,
    )


async def prune(conn: asyncpg.Connection, older_than_hours: float) -> int:
    result = await conn.execute(
        "DELETE FROM inbox WHERE created_at < now() - make_interval(secs => $1)", older_than_hours * 3600
    )
    return int(result.split()[-1])
