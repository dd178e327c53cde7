"""Proposals through HTTP and the broker: send, accept, decline, read; the lead follows the deal.

The helpers here (a proposal in a given state, the proposals barrier, SQL on the side) are shared
with test_payments.py and test_contracts.py.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import pytest

from tests.conftest import Api
from tests.e2e.test_bookings import sql
from tests.support.broker import Probe
from tests.support.infra import Infra
from tests.support.stack import Stack, eventually


def future(days: float = 30) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


async def send_proposal(api: Api, lead_id: str, amount: int = 150_000, currency: str = "USD", **extra: object) -> dict:
    body = {
        "leadId": lead_id,
        "title": "Website redesign",
        "amountMinor": amount,
        "currency": currency,
        "validUntil": future(),
        **extra,
    }
    status, _, reply = await api.post("/api/proposals", body)
    assert status == 201, reply
    return reply["proposal"]


async def accepted_proposal(api: Api, amount: int = 150_000, currency: str = "USD") -> dict:
    proposal = await send_proposal(api, (await api.create_lead())["id"], amount, currency)
    status, _, reply = await api.post("/api/proposals/accept", {"proposalId": proposal["id"]})
    assert status == 200, reply
    return reply["proposal"]


@asynccontextmanager
async def row_locked(infra: Infra, table: str, row_id: str) -> AsyncIterator[None]:
    """Hold a row lock of the proposals schema: the service's own `FOR UPDATE` runs into its lock timeout."""
    conn = await asyncpg.connect(infra.database_url)
    try:
        async with conn.transaction():
            await conn.execute(f"SELECT 1 FROM proposals.{table} WHERE id = $1 FOR UPDATE", row_id)
            yield
    finally:
        await conn.close()


async def barrier(probe: Probe, org: str) -> None:
    """Wait until every proposals event committed before now has been published.

    The proposals relay publishes its outbox in id order: once the event of a fresh proposal
    arrives, every earlier one has too (probe.barrier says the same of the leads service only).
    """
    created = await probe.reply(
        await probe.send("leads.create", {"name": "Barrier", "phone": "+14155550199"}, org=org, message_id=uuid4().hex)
    )
    lead = created[0].body["lead"]["id"]
    body = {"leadId": lead, "title": "Barrier", "amountMinor": 1, "currency": "USD", "validUntil": future()}
    await probe.reply(await probe.send("proposals.send", body, org=org, message_id=uuid4().hex))
    await eventually(lambda: probe.events_of(org, "proposals.sent", lead), 15, what="the proposals barrier event")


async def lead_status(api: Api, lead_id: str, status: str) -> None:
    async def there() -> bool:
        return (await api.get(f"/api/leads/{lead_id}"))[2]["lead"]["status"] == status

    await eventually(there, 15, 0.1, f"lead {lead_id} to be {status}")


# Send ------------------------------------------------------------------------------
async def test_send_then_read_a_proposal(api: Api, probe: Probe, org: str) -> None:
    lead = (await api.create_lead())["id"]
    proposal = await send_proposal(api, lead, 150_000, notes="Phase one")
    assert (proposal["lead_id"], proposal["status"], proposal["amount_minor"], proposal["currency"]) == (
        lead,
        "sent",
        150_000,
        "USD",
    )
    assert (proposal["paid_minor"], proposal["balance_minor"], proposal["created_by"]) == (0, 150_000, "agent-1")
    assert proposal["notes"] == "Phase one" and proposal["decided_at"] is None
    status, _, detail = await api.get(f"/api/proposals/{proposal['id']}")
    assert (status, detail) == (200, {"proposal": proposal, "payments": [], "refunds": [], "contracts": []})
    await lead_status(api, lead, "proposal")
    await barrier(probe, org)
    (event,) = probe.events_of(org, "proposals.sent", lead)
    assert event["data"] == {
        "proposalId": proposal["id"],
        "leadId": lead,
        "title": "Website redesign",
        "amountMinor": 150_000,
        "currency": "USD",
        "validUntil": event["data"]["validUntil"],
        "by": "agent-1",
    }
    assert datetime.fromisoformat(event["data"]["validUntil"]) == datetime.fromisoformat(proposal["valid_until"])


async def test_a_lead_s_proposals_newest_first(api: Api) -> None:
    lead = (await api.create_lead())["id"]
    first = await send_proposal(api, lead, 1000)
    second = await send_proposal(api, lead, 2000, "EUR")
    status, _, listed = await api.get(f"/api/leads/{lead}/proposals")
    assert status == 200 and [p["id"] for p in listed["proposals"]] == [second["id"], first["id"]]
    other = (await api.create_lead())["id"]
    status, _, listed = await api.get(f"/api/leads/{other}/proposals")
    assert (status, listed) == (200, {"proposals": []})


@pytest.mark.parametrize(
    "change",
    [
        {"validUntil": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()},  # in the past
        {"validUntil": "2030-01-01T10:00:00"},  # no time zone
        {"amountMinor": 0},
        {"amountMinor": -5},
        {"amountMinor": 10.5},
        {"amountMinor": 10**14},
        {"currency": "usd"},
        {"currency": "US"},
        {"title": "  "},
    ],
)
async def test_invalid_proposals_are_422(api: Api, change: dict) -> None:
    lead = (await api.create_lead())["id"]
    body = {
        "leadId": lead,
        "title": "Website",
        "amountMinor": 1000,
        "currency": "USD",
        "validUntil": future(),
        **change,
    }
    status, _, problem = await api.post("/api/proposals", body)
    assert status == 422 and problem["type"] == "/problems/validation", problem
    assert (await api.get(f"/api/leads/{lead}/proposals"))[2] == {"proposals": []}


# Accept and decline ----------------------------------------------------------------
async def test_accept_moves_the_lead_to_won_once(api: Api, probe: Probe, org: str) -> None:
    lead = (await api.create_lead())["id"]
    proposal = await send_proposal(api, lead)
    status, _, body = await api.post("/api/proposals/accept", {"proposalId": proposal["id"]})
    assert status == 200 and body["proposal"]["status"] == "accepted"
    assert body["proposal"]["decided_by"] == "agent-1" and body["proposal"]["decided_at"]
    again = await api.post("/api/proposals/accept", {"proposalId": proposal["id"]})
    assert again[0] == 200 and again[2] == body
    await lead_status(api, lead, "won")
    await barrier(probe, org)
    (event,) = probe.events_of(org, "proposals.accepted", lead)
    assert (event["data"]["proposalId"], event["data"]["by"]) == (proposal["id"], "agent-1")
    status, _, problem = await api.post("/api/proposals/decline", {"proposalId": proposal["id"]})
    assert (status, problem["type"], problem["currentStatus"]) == (409, "/problems/proposal-not-open", "accepted")


async def test_decline_moves_the_lead_to_lost_once(api: Api, probe: Probe, org: str) -> None:
    lead = (await api.create_lead())["id"]
    proposal = await send_proposal(api, lead)
    await lead_status(api, lead, "proposal")
    status, _, body = await api.post("/api/proposals/decline", {"proposalId": proposal["id"], "reason": "Too dear"})
    assert status == 200 and (body["proposal"]["status"], body["proposal"]["decline_reason"]) == (
        "declined",
        "Too dear",
    )
    again = await api.post("/api/proposals/decline", {"proposalId": proposal["id"], "reason": "Too dear"})
    assert again[0] == 200 and again[2] == body
    await lead_status(api, lead, "lost")
    status, _, problem = await api.post("/api/proposals/accept", {"proposalId": proposal["id"]})
    assert (status, problem["type"], problem["currentStatus"]) == (409, "/problems/proposal-not-open", "declined")
    await barrier(probe, org)
    (event,) = probe.events_of(org, "proposals.declined", lead)
    assert event["data"]["reason"] == "Too dear"
    assert not probe.events_of(org, "proposals.accepted", lead)


async def test_an_expired_proposal_cannot_be_accepted_but_can_be_declined(api: Api, infra: Infra) -> None:
    proposal = await send_proposal(api, (await api.create_lead())["id"])
    await sql(
        infra, "UPDATE proposals.proposals SET valid_until = now() - interval '1 minute' WHERE id = $1", proposal["id"]
    )
    status, _, problem = await api.post("/api/proposals/accept", {"proposalId": proposal["id"]})
    assert (status, problem["type"]) == (409, "/problems/proposal-expired") and problem["validUntil"]
    assert (await api.get(f"/api/proposals/{proposal['id']}"))[2]["proposal"]["status"] == "sent"
    status, _, body = await api.post("/api/proposals/decline", {"proposalId": proposal["id"]})
    assert status == 200 and body["proposal"]["status"] == "declined"


# Keys, redelivery, retries ----------------------------------------------------------
async def test_send_replays_with_the_same_key(api: Api, probe: Probe, org: str) -> None:
    lead = (await api.create_lead())["id"]
    body = {"leadId": lead, "title": "Once", "amountMinor": 5000, "currency": "EUR", "validUntil": future()}
    key = str(uuid4())
    first = await api.post("/api/proposals", body, key=key)
    again = await api.post("/api/proposals", body, key=key)
    assert first[0] == again[0] == 201 and first[2] == again[2]
    assert "Idempotent-Replayed" not in first[1] and again[1]["Idempotent-Replayed"] == "true"
    assert len((await api.get(f"/api/leads/{lead}/proposals"))[2]["proposals"]) == 1
    await barrier(probe, org)
    assert len(probe.events_of(org, "proposals.sent", lead)) == 1


async def test_accept_delivered_twice_on_the_broker_takes_effect_once(api: Api, probe: Probe, org: str) -> None:
    lead = (await api.create_lead())["id"]
    proposal = await send_proposal(api, lead)
    message_id = uuid4().hex
    correlation_id = await probe.send(
        "proposals.accept", {"proposalId": proposal["id"]}, org=org, message_id=message_id
    )
    await probe.send(
        "proposals.accept",
        {"proposalId": proposal["id"]},
        org=org,
        message_id=message_id,
        correlation_id=correlation_id,
    )
    first, second = await probe.reply(correlation_id, count=2)
    assert first.status == second.status == 200 and first.body == second.body
    assert {first.headers["x-replayed"], second.headers["x-replayed"]} == {"true", "false"}
    await barrier(probe, org)
    (event,) = probe.events_of(org, "proposals.accepted", lead)
    assert event["command_id"] == message_id


async def test_a_locked_proposal_is_retried_then_accepted(
    api: Api, probe: Probe, infra: Infra, stack: Stack, org: str
) -> None:
    lead = (await api.create_lead())["id"]
    proposal = await send_proposal(api, lead)
    message_id = uuid4().hex
    service = stack.processes["proposals"]
    async with row_locked(infra, "proposals", proposal["id"]):
        correlation_id = await probe.send(
            "proposals.accept", {"proposalId": proposal["id"]}, org=org, message_id=message_id
        )
        await eventually(
            lambda: service.logged("command.retry_scheduled", command_id=message_id), 10, what="a retry to be scheduled"
        )
    (reply,) = await probe.reply(correlation_id)
    assert reply.status == 200 and reply.body["proposal"]["status"] == "accepted"
    assert reply.headers["x-attempt"] >= 2
    await lead_status(api, lead, "won")
    await barrier(probe, org)
    assert len(probe.events_of(org, "proposals.accepted", lead)) == 1


# Organisations ---------------------------------------------------------------------
async def test_another_organisation_s_leads_and_proposals_are_404(api: Api) -> None:
    stranger = api.as_user(f"other-{uuid4().hex[:6]}")
    their_lead = (await stranger.create_lead())["id"]
    theirs = await send_proposal(stranger, their_lead)
    for lead_id in (their_lead, str(uuid4()), "not-a-uuid"):
        status, _, problem = await api.post(
            "/api/proposals",
            {"leadId": lead_id, "title": "Mine", "amountMinor": 1, "currency": "USD", "validUntil": future()},
        )
        assert (status, problem["type"]) == (404, "/problems/not-found"), problem
        for path in (f"/api/leads/{lead_id}/proposals", f"/api/leads/{lead_id}/timeline"):
            assert (await api.get(path))[0] == 404, path
    for proposal_id in (theirs["id"], str(uuid4()), "not-a-uuid"):
        assert (await api.get(f"/api/proposals/{proposal_id}"))[0] == 404
        for action in ("accept", "decline"):
            status, _, problem = await api.post(f"/api/proposals/{action}", {"proposalId": proposal_id})
            assert (status, problem["type"]) == (404, "/problems/not-found"), problem
    status, _, body = await stranger.get(f"/api/proposals/{theirs['id']}")
    assert status == 200 and body["proposal"]["status"] == "sent"


# The whole deal --------------------------------------------------------------------
async def test_the_timeline_tells_the_deal_oldest_first(api: Api) -> None:
    lead = (await api.create_lead())["id"]
    proposal = await send_proposal(api, lead, 100_000)
    await api.post("/api/proposals/accept", {"proposalId": proposal["id"]})
    _, _, paid = await api.post(
        "/api/payments",
        {
            "proposalId": proposal["id"],
            "amountMinor": 40_000,
            "currency": "USD",
            "method": "card",
            "externalReference": "ch_1",
        },
    )
    _, _, refunded = await api.post(
        "/api/payments/refund", {"paymentId": paid["payment"]["id"], "amountMinor": 5_000, "reason": "discount"}
    )
    _, _, contract = await api.post("/api/contracts", {"proposalId": proposal["id"]})
    contract_id = contract["contract"]["id"]
    await api.post("/api/contracts/send", {"contractId": contract_id})
    await api.post("/api/contracts/sign", {"contractId": contract_id, "signerName": "Ada Lovelace"})
    status, _, body = await api.get(f"/api/leads/{lead}/timeline")
    assert status == 200
    steps = [(e["type"], e["ref_id"], e["by"]) for e in body["timeline"]]
    assert steps == [
        ("proposals.sent", proposal["id"], "agent-1"),
        ("proposals.accepted", proposal["id"], "agent-1"),
        ("payments.recorded", paid["payment"]["id"], "agent-1"),
        ("payments.refunded", refunded["refund"]["id"], "agent-1"),
        ("contracts.created", contract_id, "agent-1"),
        ("contracts.sent", contract_id, "agent-1"),
        ("contracts.signed", contract_id, "agent-1"),
    ]
    times = [datetime.fromisoformat(e["at"]) for e in body["timeline"]]
    assert times == sorted(times)
    summaries = [e["summary"] for e in body["timeline"]]
    assert "1,000.00 USD" in summaries[0] and "balance 600.00 USD" in summaries[2]
    assert "balance 650.00 USD" in summaries[3] and "signed by Ada Lovelace" in summaries[6]


async def test_a_refused_step_leaves_no_timeline_row(api: Api) -> None:
    lead = (await api.create_lead())["id"]
    proposal = await send_proposal(api, lead)
    await api.post("/api/proposals/decline", {"proposalId": proposal["id"]})
    refusals = await asyncio.gather(
        api.post("/api/proposals/accept", {"proposalId": proposal["id"]}),
        api.post(
            "/api/payments",
            {
                "proposalId": proposal["id"],
                "amountMinor": 1,
                "currency": "USD",
                "method": "cash",
                "externalReference": f"r-{uuid4()}",
            },
        ),
        api.post("/api/contracts", {"proposalId": proposal["id"]}),
    )
    assert [r[0] for r in refusals] == [409, 409, 409]
    _, _, body = await api.get(f"/api/leads/{lead}/timeline")
    assert [e["type"] for e in body["timeline"]] == ["proposals.sent", "proposals.declined"]


async def test_a_deal_event_the_lead_cannot_follow_is_skipped_not_parked(api: Api, stack: Stack) -> None:
    """A lead someone moved to lost meanwhile stays lost when its proposal is sent (lost → proposal is no
    allowed move): the leads service skips the event and says so, once; nothing is retried or parked."""
    lead = (await api.create_lead())["id"]
    assert (await api.post("/api/leads/update-status", {"leadId": lead, "status": "lost"}))[0] == 200
    await send_proposal(api, lead)
    leads = stack.processes["leads"]
    skipped = await eventually(
        lambda: leads.logged("lead.deal_move_skipped", lead_id=lead),
        15,
        what="the leads service to skip the proposal's move",
    )
    assert skipped[0]["deal_event"] == "proposals.sent" and skipped[0]["current"] == "lost"
    assert len(skipped) == 1  # handled once: not retried (it would log again) nor parked
    assert (await api.get(f"/api/leads/{lead}"))[2]["lead"]["status"] == "lost"
