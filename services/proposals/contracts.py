"""Contract subscribers: create from an accepted proposal, then send, sign or void.

    draft ──send──► sent ──sign──► signed (final: never changes)
      │  └────────sign────────────►
      └──void──► void (final) ◄──void── sent

A contract is made under the proposal's row lock, so two creates cannot both find no open
contract (and a partial unique index says the same in the database).
"""

from collections.abc import Callable
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg

from services.proposals import domain, repository, timeline
from shared.contracts.envelope import Event, Reply
from shared.contracts.proposals import (
    ContractChanged,
    ContractCreated,
    ContractReply,
    ContractSent,
    ContractSigned,
    ContractStatus,
    ContractTerms,
    ContractView,
    ContractVoided,
    CreateContract,
    GetContract,
    SendContract,
    SignContract,
    VoidContract,
)
from shared.messages import Meta, Outcome, ok
from shared.problems import not_found


def view(row: asyncpg.Record) -> ContractView:
    terms = ContractTerms(
        title=row["title"], amount_minor=row["amount_minor"], currency=row["currency"], valid_until=row["valid_until"]
    )
    return ContractView(terms=terms, **{k: row[k] for k in ContractView.model_fields if k != "terms"})


async def create(conn: asyncpg.Connection, cmd: CreateContract, meta: Meta) -> Outcome:
    proposal = await repository.proposal(conn, meta.org_id, cmd.proposalId, lock=True)
    if proposal is None:
        raise not_found("proposal", cmd.proposalId)
    domain.check_new_contract(proposal["id"], proposal["status"], await repository.open_contract(conn, proposal["id"]))
    now = datetime.now(UTC)
    row = await repository.insert_contract(conn, uuid4(), meta.org_id, proposal, now, meta.user_id)
    return Outcome(ok(ContractReply(contract=view(row)), 201), [await _step(conn, meta, row, now, ContractCreated)])


async def send(conn: asyncpg.Connection, cmd: SendContract, meta: Meta) -> Outcome:
    return await _move(conn, meta, cmd.contractId, ContractStatus.sent, ContractSent)


async def sign(conn: asyncpg.Connection, cmd: SignContract, meta: Meta) -> Outcome:
    now = datetime.now(UTC)
    signed_at = cmd.signedAt or now
    domain.check_signed_at(signed_at, now)
    return await _move(
        conn,
        meta,
        cmd.contractId,
        ContractStatus.signed,
        ContractSigned,
        cmd.signerName,
        signed_at,
        signerName=cmd.signerName,
    )


async def void(conn: asyncpg.Connection, cmd: VoidContract, meta: Meta) -> Outcome:
    return await _move(conn, meta, cmd.contractId, ContractStatus.void, ContractVoided, cmd.reason, reason=cmd.reason)


async def get(conn: asyncpg.Connection, query: GetContract, org: str) -> Reply:
    row = await repository.contract(conn, org, query.contractId)
    if row is None:
        raise not_found("contract", query.contractId)
    return ok(ContractReply(contract=view(row)))


async def _move(
    conn: asyncpg.Connection,
    meta: Meta,
    contract_id: str,
    target: ContractStatus,
    announce: Callable[..., ContractChanged],
    detail: str | None = None,
    at: datetime | None = None,
    **event_fields: str,
) -> Outcome:
    """`detail`: the signer's name or the void reason; `at`: when it happened (now unless given)."""
    row = await repository.contract(conn, meta.org_id, contract_id, lock=True)
    if row is None:
        raise not_found("contract", contract_id)
    if not domain.check_contract_move(row["id"], row["status"], target):
        return Outcome(ok(ContractReply(contract=view(row))))
    now = datetime.now(UTC)
    row = await repository.move_contract(conn, row["id"], target, at or now, detail)
    return Outcome(ok(ContractReply(contract=view(row))), [await _step(conn, meta, row, now, announce, **event_fields)])


async def _step(
    conn: asyncpg.Connection,
    meta: Meta,
    row: asyncpg.Record,
    now: datetime,
    announce: Callable[..., ContractChanged],
    **fields: str,
) -> Event:
    data = announce(
        contractId=row["id"],
        proposalId=row["proposal_id"],
        leadId=row["lead_id"],
        status=row["status"],
        at=now,
        by=meta.user_id,
        **fields,
    )
    return await timeline.step(
        conn, meta, row["lead_id"], now, data, timeline.contract_changed(data, row["title"]), row["id"]
    )
