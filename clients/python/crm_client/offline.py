"""The offline queue: presses made while the gateway cannot be reached, kept in SQLite.

Guarantees:
- A queued press is committed (WAL, synchronous=FULL) before the call returns its Queued
  result: a crash of the process right after loses nothing.
- Each press keeps the idempotency key it was made with; a replay is the same request
  (same route, same body bytes, same key), so a press that had in fact got through is
  answered from the server's inbox and has no second effect.
- Replay goes in the order the presses were made and stops at the first that still cannot
  be delivered; a refusal is recorded against its press (state 'failed', with the problem
  body) and the next ones still go. Nothing is retried forever: a refused press is settled.

Rows are scoped to (deployment, organisation, user) (crm_client/scope.py: the deployment is the
token's issuer, else the gateway's origin): a queue file shared by two identities never replays one's
presses with the other's token by itself. Every scope's rows are listed (`pending(all_scopes=True)`),
and `flush(all_scopes=True)` replays another scope's rows only for the same organisation and user.
Rows of the old format (scoped by "URL\\norg\\nuser") are rewritten to the new one on open; none is
dropped.
"""

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from crm_client.scope import Scope, origin, scope_of

__all__ = ["Outcome", "Queued", "Scope", "Store", "scope_of"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS presses (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,  -- the order presses were made in
    scope      TEXT NOT NULL,
    key        TEXT NOT NULL UNIQUE,               -- the Idempotency-Key, made once
    operation  TEXT NOT NULL,
    path       TEXT NOT NULL,
    body       TEXT NOT NULL,                      -- the exact bytes sent, so a replay matches the key
    made_at    TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'pending',    -- pending | done | failed
    status     INTEGER,
    answer     TEXT,
    settled_at TEXT
);
CREATE INDEX IF NOT EXISTS presses_pending ON presses (scope, state, seq);
"""


@dataclass(frozen=True)
class _Press:
    """A press as the queue keeps it: its order, its key and its request."""

    seq: int
    key: str
    operation: str
    path: str
    body: dict[str, Any]
    made_at: str
    scope: Scope | None = field(default=None, kw_only=True)  # whose press it is


@dataclass(frozen=True)
class Queued(_Press):
    """The result of a press that could not be delivered now: it waits in the offline queue."""

    status: str = "queued"

    @property
    def queued(self) -> bool:
        return True

    def to_json(self) -> dict[str, Any]:
        return {"queued": asdict(self)}


@dataclass(frozen=True)
class Outcome(_Press):
    """How a queued press ended when it was replayed: done (its answer) or failed (the refusal)."""

    state: str
    status: int | None
    answer: Any
    settled_at: str | None

    @property
    def ok(self) -> bool:
        return self.state == "done"

    def to_json(self) -> dict[str, Any]:
        return {"outcome": asdict(self)}


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Store:
    def __init__(self, path: str, scope: Scope, gateway: str | None = None):
        """`gateway`: the URL the rows of the old format are compared with (default: the scope's deployment)."""
        self.scope = scope
        # One short transaction per call; autocommit off, committed explicitly by `with self.db`.
        self.db = sqlite3.connect(path, timeout=30, isolation_level="DEFERRED")
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # the commit is on disk before add() returns
        with self.db:
            self.db.executescript(SCHEMA)
        self._migrate(origin(gateway) if gateway else scope.deployment)

    def _migrate(self, gateway: str) -> None:
        """Rows of the old format in the new one. A row the old code would have replayed with this identity
        (its URL's origin, org and user are ours) becomes ours, whatever our deployment; another is scoped by
        its URL's origin. Each old value is rewritten in one statement: a second process doing the same
        finds nothing left to do, and a row is never dropped."""
        old = [row[0] for row in self.db.execute("SELECT DISTINCT scope FROM presses WHERE scope NOT LIKE '[%'")]
        self.db.commit()
        if not old:
            return
        ours = Scope(gateway, self.scope.org, self.scope.user)
        with self.db:
            for stored in old:
                was = Scope.parse(stored)
                new = self.scope if was == ours and ours.same_identity(was) else was
                self.db.execute("UPDATE presses SET scope = ? WHERE scope = ?", (new.key, stored))

    def close(self) -> None:
        self.db.close()

    def add(self, key: str, operation: str, path: str, body: str) -> Queued:
        made = _now()
        with self.db:
            cursor = self.db.execute(
                "INSERT INTO presses (scope, key, operation, path, body, made_at) VALUES (?, ?, ?, ?, ?, ?)",
                (self.scope.key, key, operation, path, body, made),
            )
        return Queued(cursor.lastrowid or 0, key, operation, path, json.loads(body), made, scope=self.scope)

    def pending(self, all_scopes: bool = False) -> list[Queued]:
        """What waits, in the order it was made: this scope's, or every scope's."""
        if all_scopes:
            rows = self.db.execute("SELECT * FROM presses WHERE state = 'pending' ORDER BY seq").fetchall()
        else:
            rows = self.db.execute(
                "SELECT * FROM presses WHERE scope = ? AND state = 'pending' ORDER BY seq", (self.scope.key,)
            ).fetchall()
        self.db.commit()  # end the read transaction: WAL readers must not pin an old snapshot
        return [
            Queued(r["seq"], r["key"], r["operation"], r["path"], json.loads(r["body"]), r["made_at"], scope=_scope(r))
            for r in rows
        ]

    def raw_body(self, seq: int) -> str:
        (body,) = self.db.execute("SELECT body FROM presses WHERE seq = ?", (seq,)).fetchone()
        self.db.commit()
        return body

    def settle(self, seq: int, state: str, status: int | None, answer: Any) -> Outcome:
        with self.db:
            self.db.execute(
                "UPDATE presses SET state = ?, status = ?, answer = ?, settled_at = ? "
                "WHERE seq = ? AND state = 'pending'",
                (state, status, json.dumps(answer), _now(), seq),
            )
            row = self.db.execute("SELECT * FROM presses WHERE seq = ?", (seq,)).fetchone()
        return self._outcome(row)

    def outcomes(self) -> list[Outcome]:
        rows = self.db.execute(
            "SELECT * FROM presses WHERE scope = ? AND state != 'pending' ORDER BY seq", (self.scope.key,)
        ).fetchall()
        self.db.commit()
        return [self._outcome(r) for r in rows]

    @staticmethod
    def _outcome(r: sqlite3.Row) -> Outcome:
        return Outcome(
            r["seq"],
            r["key"],
            r["operation"],
            r["path"],
            json.loads(r["body"]),
            r["made_at"],
            r["state"],
            r["status"],
            json.loads(r["answer"]) if r["answer"] else None,
            r["settled_at"],
            scope=_scope(r),
        )


def _scope(row: sqlite3.Row) -> Scope:
    return Scope.parse(row["scope"])
