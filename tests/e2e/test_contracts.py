"""Contracts through HTTP and the broker: made from an accepted proposal, sent, signed (then never
changed) or voided."""

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from tests.conftest import Api
from tests.e2e.test_proposals import (
    accepted_proposal,
    barrier,
    row_locked,
    send_proposal,
    sql,
)
from tests.support.broker import Probe
from tests.support.infra import Infra
from tests.support.stack import Stack, eventually


async def create(api: Api, proposal_id: str) -> dict:
    status, _, body = await api.post("/api/contracts", {"proposalId": proposal_id})
    assert status == 201, body
    return body["contract"]


async def act(api: Api, action: str, contract_id: str, **fields: str) -> tuple[int, dict]:
    status, _, body = await api.post(f"/api/contracts/{action}", {"contractId": contract_id, **fields})
    return status, body


async def read(api: Api, contract_id: str) -> dict:
    status, _, body = await api.get(f"/api/contracts/{contract_id}")
    assert status == 200, body
    return body["contract"]


async def test_a_contract_is_a_snapshot_of_an_accepted_proposal(api: Api, probe: Probe, org: str, infra: Infra) -> None:
    proposal = await accepted_proposal(api, 120_000, "EUR")
    contract = await create(api, proposal["id"])
    assert (contract["proposal_id"], contract["lead_id"], contract["status"]) == (
        proposal["id"],
        proposal["lead_id"],
        "draft",
    )
    assert contract["terms"] == {
        "title": "Website redesign",
        "amount_minor": 120_000,
        "currency": "EUR",
        "valid_until": proposal["valid_until"],
    }
    assert [contract["sent_at"], contract["signed_at"], contract["signer_name"], contract["voided_at"]] == [None] * 4
    assert await read(api, contract["id"]) == contract
    # The proposal changing behind it (no button does that) leaves the contract's terms as they were.
    await sql(infra, "UPDATE proposals.proposals SET title = 'Changed' WHERE id = $1", proposal["id"])
    assert (await read(api, contract["id"]))["terms"]["title"] == "Website redesign"
    _, _, detail = await api.get(f"/api/proposals/{proposal['id']}")
    assert [c["id"] for c in detail["contracts"]] == [contract["id"]]
    await barrier(probe, org)
    (event,) = probe.events_of(org, "contracts.created", proposal["lead_id"])
    assert (event["data"]["contractId"], event["data"]["status"], event["data"]["by"]) == (
        contract["id"],
        "draft",
        "agent-1",
    )


async def test_one_open_contract_per_proposal(api: Api) -> None:
    proposal = await accepted_proposal(api)
    first = await create(api, proposal["id"])
    status, _, problem = await api.post("/api/contracts", {"proposalId": proposal["id"]})
    assert (status, problem["type"], problem["contractId"]) == (409, "/problems/conflict", first["id"])
    assert (await act(api, "void", first["id"], reason="Wrong terms"))[0] == 200
    second = await create(api, proposal["id"])  # the void one no longer counts
    assert second["id"] != first["id"]


async def test_contracts_made_at_once_are_one(api: Api) -> None:
    proposal = await accepted_proposal(api)
    answers = await asyncio.gather(*(api.post("/api/contracts", {"proposalId": proposal["id"]}) for _ in range(4)))
    assert sorted(a[0] for a in answers) == [201, 409, 409, 409], answers
    _, _, detail = await api.get(f"/api/proposals/{proposal['id']}")
    assert len(detail["contracts"]) == 1


async def test_only_an_accepted_proposal_makes_a_contract(api: Api) -> None:
    sent = await send_proposal(api, (await api.create_lead())["id"])
    status, _, problem = await api.post("/api/contracts", {"proposalId": sent["id"]})
    assert (status, problem["type"], problem["currentStatus"]) == (409, "/problems/proposal-not-accepted", "sent")


async def test_send_then_sign_then_never_change(api: Api, probe: Probe, org: str) -> None:
    proposal = await accepted_proposal(api)
    contract = await create(api, proposal["id"])
    status, sent = await act(api, "send", contract["id"])
    assert status == 200 and sent["contract"]["status"] == "sent" and sent["contract"]["sent_at"]
    assert await act(api, "send", contract["id"]) == (200, sent)  # sent again: nothing to do
    signed_at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    status, signed = await act(api, "sign", contract["id"], signerName="Ada Lovelace", signedAt=signed_at)
    assert status == 200 and (signed["contract"]["status"], signed["contract"]["signer_name"]) == (
        "signed",
        "Ada Lovelace",
    )
    assert datetime.fromisoformat(signed["contract"]["signed_at"]) == datetime.fromisoformat(signed_at)
    for action, fields in (
        ("sign", {"signerName": "Ada Lovelace"}),
        ("sign", {"signerName": "Someone else"}),
        ("void", {"reason": "Changed our mind"}),
        ("send", {}),
    ):
        status, problem = await act(api, action, contract["id"], **fields)
        assert (status, problem["type"], problem["currentStatus"]) == (409, "/problems/contract-closed", "signed")
    assert await read(api, contract["id"]) == signed["contract"]
    status, _, problem = await api.post("/api/contracts", {"proposalId": proposal["id"]})
    assert (status, problem["contractId"]) == (409, contract["id"])  # a signed contract stays the open one
    await barrier(probe, org)
    lead = proposal["lead_id"]
    assert [
        len(probe.events_of(org, t, lead))
        for t in ("contracts.created", "contracts.sent", "contracts.signed", "contracts.voided")
    ] == [1, 1, 1, 0]
    (event,) = probe.events_of(org, "contracts.signed", lead)
    assert (event["data"]["signerName"], event["data"]["status"]) == ("Ada Lovelace", "signed")


async def test_a_draft_can_be_signed_and_signed_at_defaults_to_now(api: Api) -> None:
    contract = await create(api, (await accepted_proposal(api))["id"])
    before = datetime.now(UTC)
    status, body = await act(api, "sign", contract["id"], signerName="Grace Hopper")
    assert status == 200 and body["contract"]["status"] == "signed" and body["contract"]["sent_at"] is None
    assert before - timedelta(seconds=5) <= datetime.fromisoformat(body["contract"]["signed_at"]) <= datetime.now(UTC)


async def test_a_signature_dated_in_the_future_is_refused(api: Api) -> None:
    contract = await create(api, (await accepted_proposal(api))["id"])
    status, problem = await act(
        api, "sign", contract["id"], signerName="Ada", signedAt=(datetime.now(UTC) + timedelta(days=1)).isoformat()
    )
    assert (status, problem["type"]) == (422, "/problems/validation")
    assert (await read(api, contract["id"]))["status"] == "draft"


async def test_void_once_then_closed(api: Api, probe: Probe, org: str) -> None:
    proposal = await accepted_proposal(api)
    contract = await create(api, proposal["id"])
    await act(api, "send", contract["id"])
    status, voided = await act(api, "void", contract["id"], reason="Wrong terms")
    assert status == 200 and (voided["contract"]["status"], voided["contract"]["void_reason"]) == (
        "void",
        "Wrong terms",
    )
    assert voided["contract"]["voided_at"]
    assert await act(api, "void", contract["id"], reason="Wrong terms") == (200, voided)
    for action, fields in (("send", {}), ("sign", {"signerName": "Ada"})):
        status, problem = await act(api, action, contract["id"], **fields)
        assert (status, problem["type"], problem["currentStatus"]) == (409, "/problems/contract-closed", "void")
    await barrier(probe, org)
    (event,) = probe.events_of(org, "contracts.voided", proposal["lead_id"])
    assert event["data"]["reason"] == "Wrong terms"


async def test_sign_replays_with_the_same_key(api: Api, probe: Probe, org: str) -> None:
    proposal = await accepted_proposal(api)
    contract = await create(api, proposal["id"])
    key, body = str(uuid4()), {"contractId": contract["id"], "signerName": "Ada"}
    first = await api.post("/api/contracts/sign", body, key=key)
    again = await api.post("/api/contracts/sign", body, key=key)
    assert first[0] == again[0] == 200 and first[2] == again[2]  # not ContractClosed: the first answer again
    assert again[1]["Idempotent-Replayed"] == "true"
    await barrier(probe, org)
    assert len(probe.events_of(org, "contracts.signed", proposal["lead_id"])) == 1


async def test_sign_delivered_twice_on_the_broker_signs_once(api: Api, probe: Probe, org: str) -> None:
    proposal = await accepted_proposal(api)
    contract = await create(api, proposal["id"])
    message_id, body = uuid4().hex, {"contractId": contract["id"], "signerName": "Ada"}
    correlation_id = await probe.send("proposals.sign_contract", body, org=org, message_id=message_id)
    await probe.send("proposals.sign_contract", body, org=org, message_id=message_id, correlation_id=correlation_id)
    first, second = await probe.reply(correlation_id, count=2)
    assert first.status == second.status == 200 and first.body == second.body
    await barrier(probe, org)
    assert len(probe.events_of(org, "contracts.signed", proposal["lead_id"])) == 1


async def test_a_locked_contract_is_retried_then_sent(
    api: Api, probe: Probe, infra: Infra, stack: Stack, org: str
) -> None:
    contract = await create(api, (await accepted_proposal(api))["id"])
    message_id, service = uuid4().hex, stack.processes["proposals"]
    async with row_locked(infra, "contracts", contract["id"]):
        correlation_id = await probe.send(
            "proposals.send_contract", {"contractId": contract["id"]}, org=org, message_id=message_id
        )
        await eventually(
            lambda: service.logged("command.retry_scheduled", command_id=message_id), 10, what="a retry to be scheduled"
        )
    (reply,) = await probe.reply(correlation_id)
    assert reply.status == 200 and reply.body["contract"]["status"] == "sent" and reply.headers["x-attempt"] >= 2


async def test_another_organisation_s_contracts_are_404(api: Api) -> None:
    stranger = api.as_user(f"other-{uuid4().hex[:6]}")
    their_proposal = await accepted_proposal(stranger)
    theirs = await create(stranger, their_proposal["id"])
    status, _, problem = await api.post("/api/contracts", {"proposalId": their_proposal["id"]})
    assert (status, problem["type"]) == (404, "/problems/not-found")
    for contract_id in (theirs["id"], str(uuid4()), "not-a-uuid"):
        assert (await api.get(f"/api/contracts/{contract_id}"))[0] == 404
        for action, fields in (("send", {}), ("sign", {"signerName": "Mallory"}), ("void", {"reason": "x"})):
            status, problem = await act(api, action, contract_id, **fields)
            assert (status, problem["type"]) == (404, "/problems/not-found"), problem
    assert (await read(stranger, theirs["id"]))["status"] == "draft"
