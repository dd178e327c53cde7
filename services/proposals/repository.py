"""SQL for proposals, payments, refunds, contracts and the timeline. Functions take a connection
and never commit.

The paid totals (`proposals.paid_minor`, `payments.refunded_minor`) change only in the statement
that writes the payment or refund they count, so a total never disagrees with its rows; the
callers hold the proposal's row lock, so two payments cannot both see the old balance.
"""

from datetime import datetime
from uuid import UUID

import asyncpg

from shared.contracts.proposals import ContractStatus, ProposalStatus
from shared.db import as_uuid

PROPOSAL = (
    "id::text AS id, lead_id::text AS lead_id, title, amount_minor, currency, valid_until, notes, status, "
    "paid_minor, amount_minor - paid_minor AS balance_minor, created_at, created_by, decided_at, decided_by, "
    "decline_reason"
)
PAYMENT = (
    "id::text AS id, proposal_id::text AS proposal_id, amount_minor, currency, method, external_reference, "
    "refunded_minor, recorded_at, recorded_by"
)
REFUND = "id::text AS id, payment_id::text AS payment_id, amount_minor, currency, reason, refunded_at, refunded_by"
CONTRACT = (
    "id::text AS id, proposal_id::text AS proposal_id, lead_id::text AS lead_id, status, title, amount_minor, "
    "currency, valid_until, created_at, sent_at, signed_at, signer_name, voided_at, void_reason"
)


async def _one(
    conn: asyncpg.Connection, table: str, columns: str, org: str, ident: str, lock: bool
) -> asyncpg.Record | None:
    uuid = as_uuid(ident)
    if uuid is None:
        return None  # not an id: names nothing
    return await conn.fetchrow(
        f"SELECT {columns} FROM {table} WHERE id = $1 AND org_id = $2" + (" FOR UPDATE" if lock else ""), uuid, org
    )


# Proposals -------------------------------------------------------------------------
async def insert_proposal(
    conn: asyncpg.Connection,
    proposal_id: UUID,
    org: str,
    lead_id: str,
    title: str,
    amount_minor: int,
    currency: str,
    valid_until: datetime,
    notes: str | None,
    at: datetime,
    by: str,
) -> asyncpg.Record:
    return await conn.fetchrow(
        f"INSERT INTO proposals (id, org_id, lead_id, title, amount_minor, currency, valid_until, notes, created_at, "
        f"created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {PROPOSAL}",
        proposal_id,
        org,
        UUID(lead_id),
        title,
        amount_minor,
        currency,
        valid_until,
        notes,
        at,
        by,
    )


async def proposal(
    conn: asyncpg.Connection, org: str, proposal_id: str, *, lock: bool = False
) -> asyncpg.Record | None:
    return await _one(conn, "proposals", PROPOSAL, org, proposal_id, lock)


async def decide(
    conn: asyncpg.Connection, proposal_id: str, status: ProposalStatus, at: datetime, by: str, reason: str | None = None
) -> asyncpg.Record:
    return await conn.fetchrow(
        f"UPDATE proposals SET status = $2, decided_at = $3, decided_by = $4, decline_reason = $5 WHERE id = $1 "
        f"RETURNING {PROPOSAL}",
        UUID(proposal_id),
        status,
        at,
        by,
        reason,
    )


async def proposals_of_lead(conn: asyncpg.Connection, org: str, lead_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {PROPOSAL} FROM proposals WHERE org_id = $1 AND lead_id = $2 ORDER BY created_at DESC, id DESC",
        org,
        UUID(lead_id),
    )


# Payments and refunds --------------------------------------------------------------
async def payment(conn: asyncpg.Connection, org: str, payment_id: str, *, lock: bool = False) -> asyncpg.Record | None:
    return await _one(conn, "payments", PAYMENT, org, payment_id, lock)


async def payment_by_reference(conn: asyncpg.Connection, org: str, reference: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {PAYMENT} FROM payments WHERE org_id = $1 AND external_reference = $2", org, reference
    )


async def insert_payment(
    conn: asyncpg.Connection,
    payment_id: UUID,
    org: str,
    proposal_id: str,
    amount_minor: int,
    currency: str,
    method: str,
    reference: str,
    at: datetime,
    by: str,
) -> asyncpg.Record:
    """The payment, and the proposal's paid total raised by it, in one statement."""
    return await conn.fetchrow(
        "WITH payment AS (INSERT INTO payments (id, org_id, proposal_id, amount_minor, currency, method, "
        "external_reference, recorded_at, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *), "
        "paid AS (UPDATE proposals p SET paid_minor = p.paid_minor + payment.amount_minor FROM payment "
        "WHERE p.id = payment.proposal_id) "
        f"SELECT {PAYMENT} FROM payment",
        payment_id,
        org,
        UUID(proposal_id),
        amount_minor,
        currency,
        method,
        reference,
        at,
        by,
    )


async def insert_refund(
    conn: asyncpg.Connection,
    refund_id: UUID,
    org: str,
    payment_id: str,
    proposal_id: str,
    amount_minor: int,
    currency: str,
    reason: str | None,
    at: datetime,
    by: str,
) -> asyncpg.Record:
    """The refund, and the payment's refunded total and the proposal's paid total moved by it, in one statement."""
    return await conn.fetchrow(
        "WITH refund AS (INSERT INTO refunds (id, org_id, payment_id, proposal_id, amount_minor, currency, reason, "
        "refunded_at, refunded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *), "
        "refunded AS (UPDATE payments p SET refunded_minor = p.refunded_minor + refund.amount_minor FROM refund "
        "WHERE p.id = refund.payment_id), "
        "paid AS (UPDATE proposals p SET paid_minor = p.paid_minor - refund.amount_minor FROM refund "
        "WHERE p.id = refund.proposal_id) "
        f"SELECT {REFUND} FROM refund",
        refund_id,
        org,
        UUID(payment_id),
        UUID(proposal_id),
        amount_minor,
        currency,
        reason,
        at,
        by,
    )


async def payments_of(conn: asyncpg.Connection, proposal_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {PAYMENT} FROM payments WHERE proposal_id = $1 ORDER BY recorded_at, id", UUID(proposal_id)
    )


async def refunds_of(conn: asyncpg.Connection, proposal_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {REFUND} FROM refunds WHERE proposal_id = $1 ORDER BY refunded_at, id", UUID(proposal_id)
    )


# Contracts -------------------------------------------------------------------------
async def contract(
    conn: asyncpg.Connection, org: str, contract_id: str, *, lock: bool = False
) -> asyncpg.Record | None:
    return await _one(conn, "contracts", CONTRACT, org, contract_id, lock)


async def open_contract(conn: asyncpg.Connection, proposal_id: str) -> str | None:
    return await conn.fetchval(
        "SELECT id::text FROM contracts WHERE proposal_id = $1 AND status <> 'void'", UUID(proposal_id)
    )


async def insert_contract(
    conn: asyncpg.Connection, contract_id: UUID, org: str, proposal: asyncpg.Record, at: datetime, by: str
) -> asyncpg.Record:
    """A draft holding a snapshot of the proposal's terms."""
    return await conn.fetchrow(
        "INSERT INTO contracts (id, org_id, proposal_id, lead_id, title, amount_minor, currency, valid_until, "
        f"created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {CONTRACT}",
        contract_id,
        org,
        UUID(proposal["id"]),
        UUID(proposal["lead_id"]),
        proposal["title"],
        proposal["amount_minor"],
        proposal["currency"],
        proposal["valid_until"],
        at,
        by,
    )


# The columns each move sets, besides the status.
_MOVED = {
    ContractStatus.sent: "sent_at = $3",
    ContractStatus.signed: "signed_at = $3, signer_name = $4",
    ContractStatus.void: "voided_at = $3, void_reason = $4",
}


async def move_contract(
    conn: asyncpg.Connection, contract_id: str, status: ContractStatus, at: datetime, detail: str | None = None
) -> asyncpg.Record:
    """`detail`: the signer's name (signed) or the reason (void)."""
    return await conn.fetchrow(
        f"UPDATE contracts SET status = $2, {_MOVED[status]} WHERE id = $1 RETURNING {CONTRACT}",
        UUID(contract_id),
        status,
        at,
        *([detail] if status != ContractStatus.sent else []),
    )


async def contracts_of(conn: asyncpg.Connection, proposal_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {CONTRACT} FROM contracts WHERE proposal_id = $1 ORDER BY created_at, id", UUID(proposal_id)
    )


# Timeline --------------------------------------------------------------------------
async def append(
    conn: asyncpg.Connection, org: str, lead_id: str, at: datetime, type_: str, summary: str, ref_id: str, by: str
) -> None:
    await conn.execute(
        "INSERT INTO timeline (org_id, lead_id, at, type, summary, ref_id, by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        org,
        UUID(lead_id),
        at,
        type_,
        summary,
        ref_id,
        by,
    )


async def timeline_of(conn: asyncpg.Connection, org: str, lead_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT at, type, summary, ref_id, by FROM timeline WHERE org_id = $1 AND lead_id = $2 ORDER BY at, id",
        org,
        UUID(lead_id),
    )
