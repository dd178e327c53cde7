"""Payments through HTTP and the broker: integer money, never above the balance, one payment per
external reference, refunds never above what was paid."""

import asyncio
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


def payment(
    proposal_id: str, amount: int, reference: str | None = None, currency: str = "USD", method: str = "card"
) -> dict:
    return {
        "proposalId": proposal_id,
        "amountMinor": amount,
        "currency": currency,
        "method": method,
        "externalReference": reference or f"ch_{uuid4().hex}",
    }


async def pay(api: Api, proposal_id: str, amount: int, reference: str | None = None, **kw: str) -> dict:
    status, _, body = await api.post("/api/payments", payment(proposal_id, amount, reference, **kw))
    assert status == 201, body
    return body


async def detail(api: Api, proposal_id: str) -> dict:
    status, _, body = await api.get(f"/api/proposals/{proposal_id}")
    assert status == 200, body
    return body


async def test_record_a_payment(api: Api, probe: Probe, org: str) -> None:
    proposal = await accepted_proposal(api, 150_000)
    body = await pay(api, proposal["id"], 50_000, "ch_first", method="bank_transfer")
    paid = body["payment"]
    assert (paid["proposal_id"], paid["amount_minor"], paid["currency"], paid["method"]) == (
        proposal["id"],
        50_000,
        "USD",
        "bank_transfer",
    )
    assert (paid["external_reference"], paid["refunded_minor"], paid["recorded_by"]) == ("ch_first", 0, "agent-1")
    assert (body["proposal"]["paid_minor"], body["proposal"]["balance_minor"]) == (50_000, 100_000)
    read = await detail(api, proposal["id"])
    assert read["payments"] == [paid] and read["proposal"] == body["proposal"]
    await barrier(probe, org)
    (event,) = probe.events_of(org, "payments.recorded", proposal["lead_id"])
    assert event["data"] | {"at": None} == {
        "paymentId": paid["id"],
        "proposalId": proposal["id"],
        "leadId": proposal["lead_id"],
        "amountMinor": 50_000,
        "currency": "USD",
        "method": "bank_transfer",
        "externalReference": "ch_first",
        "balanceMinor": 100_000,
        "at": None,
        "by": "agent-1",
    }


async def test_payments_up_to_the_balance_then_overpayment_is_refused(api: Api) -> None:
    proposal = await accepted_proposal(api, 1_000)
    await pay(api, proposal["id"], 600)
    status, _, problem = await api.post("/api/payments", payment(proposal["id"], 401))
    assert (status, problem["type"], problem["balanceMinor"]) == (409, "/problems/overpayment", 400)
    body = await pay(api, proposal["id"], 400)
    assert (body["proposal"]["paid_minor"], body["proposal"]["balance_minor"]) == (1_000, 0)
    status, _, problem = await api.post("/api/payments", payment(proposal["id"], 1))
    assert (status, problem["type"], problem["balanceMinor"]) == (409, "/problems/overpayment", 0)
    assert len((await detail(api, proposal["id"]))["payments"]) == 2


async def test_payments_against_a_proposal_that_is_not_accepted_are_refused(api: Api) -> None:
    sent = await send_proposal(api, (await api.create_lead())["id"])
    status, _, problem = await api.post("/api/payments", payment(sent["id"], 100))
    assert (status, problem["type"], problem["currentStatus"]) == (409, "/problems/proposal-not-accepted", "sent")
    await api.post("/api/proposals/decline", {"proposalId": sent["id"]})
    status, _, problem = await api.post("/api/payments", payment(sent["id"], 100))
    assert (status, problem["type"], problem["currentStatus"]) == (409, "/problems/proposal-not-accepted", "declined")
    assert (await detail(api, sent["id"]))["payments"] == []


async def test_a_payment_in_another_currency_is_refused(api: Api) -> None:
    proposal = await accepted_proposal(api, 1_000, "EUR")
    status, _, problem = await api.post("/api/payments", payment(proposal["id"], 100, currency="USD"))
    assert (status, problem["type"], problem["expectedCurrency"]) == (422, "/problems/currency-mismatch", "EUR")


async def test_money_is_whole_minor_units(api: Api) -> None:
    proposal = await accepted_proposal(api, 1_000)
    for amount in (10.5, "ten", 0, -1):
        status, _, problem = await api.post("/api/payments", payment(proposal["id"], amount))  # type: ignore[arg-type]
        assert (status, problem["type"]) == (422, "/problems/validation"), (amount, problem)
    status, _, problem = await api.post("/api/payments", {**payment(proposal["id"], 100), "method": "bitcoin"})
    assert status == 422
    assert (await detail(api, proposal["id"]))["payments"] == []


# One payment per external reference ------------------------------------------------
async def test_the_same_reference_twice_is_one_payment(api: Api, probe: Probe, org: str) -> None:
    proposal = await accepted_proposal(api, 10_000)
    body = payment(proposal["id"], 2_500, "ch_same")
    first = await api.post("/api/payments", body, key=str(uuid4()))
    again = await api.post("/api/payments", body, key=str(uuid4()))  # another key: another command, same payment
    assert first[0] == again[0] == 201
    assert again[2]["payment"] == first[2]["payment"] and again[2]["proposal"]["balance_minor"] == 7_500
    read = await detail(api, proposal["id"])
    assert len(read["payments"]) == 1 and read["proposal"]["paid_minor"] == 2_500
    await barrier(probe, org)
    assert len(probe.events_of(org, "payments.recorded", proposal["lead_id"])) == 1


async def test_the_same_reference_at_once_is_still_one_payment(api: Api, probe: Probe, org: str) -> None:
    proposal = await accepted_proposal(api, 10_000)
    body = payment(proposal["id"], 1_000, "ch_race")
    answers = await asyncio.gather(*(api.post("/api/payments", body, key=str(uuid4())) for _ in range(6)))
    assert [a[0] for a in answers] == [201] * 6, answers
    assert len({a[2]["payment"]["id"] for a in answers}) == 1
    assert (await detail(api, proposal["id"]))["proposal"]["paid_minor"] == 1_000
    await barrier(probe, org)
    assert len(probe.events_of(org, "payments.recorded", proposal["lead_id"])) == 1


async def test_a_reference_reused_for_another_payment_is_refused(api: Api) -> None:
    proposal = await accepted_proposal(api, 10_000)
    other = await accepted_proposal(api, 10_000)
    recorded = (await pay(api, proposal["id"], 1_000, "ch_taken"))["payment"]
    for body in (payment(proposal["id"], 999, "ch_taken"), payment(other["id"], 1_000, "ch_taken")):
        status, _, problem = await api.post("/api/payments", body)
        assert (status, problem["type"], problem["paymentId"]) == (409, "/problems/reference-reused", recorded["id"])
    assert (await detail(api, other["id"]))["payments"] == []


async def test_references_belong_to_their_organisation(api: Api) -> None:
    mine = await accepted_proposal(api, 10_000)
    stranger = api.as_user(f"other-{uuid4().hex[:6]}")
    theirs = await accepted_proposal(stranger, 10_000)
    a = (await pay(api, mine["id"], 1_000, "ch_shared"))["payment"]
    b = (await pay(stranger, theirs["id"], 1_000, "ch_shared"))["payment"]
    assert a["id"] != b["id"]


# Concurrency and faults ------------------------------------------------------------
async def test_payments_at_once_never_overpay(api: Api) -> None:
    proposal = await accepted_proposal(api, 1_000)
    answers = await asyncio.gather(*(api.post("/api/payments", payment(proposal["id"], 300)) for _ in range(5)))
    assert sorted(a[0] for a in answers) == [201, 201, 201, 409, 409], answers
    assert all(a[2]["type"] == "/problems/overpayment" for a in answers if a[0] == 409)
    read = await detail(api, proposal["id"])
    assert (read["proposal"]["paid_minor"], read["proposal"]["balance_minor"], len(read["payments"])) == (900, 100, 3)


async def test_a_payment_replays_with_the_same_key(api: Api, probe: Probe, org: str) -> None:
    proposal = await accepted_proposal(api, 10_000)
    body, key = payment(proposal["id"], 1_000), str(uuid4())
    first = await api.post("/api/payments", body, key=key)
    again = await api.post("/api/payments", body, key=key)
    assert first[0] == again[0] == 201 and first[2] == again[2]
    assert again[1]["Idempotent-Replayed"] == "true"
    await barrier(probe, org)
    assert len(probe.events_of(org, "payments.recorded", proposal["lead_id"])) == 1


async def test_a_payment_waits_out_a_locked_proposal(
    api: Api, probe: Probe, infra: Infra, stack: Stack, org: str
) -> None:
    proposal = await accepted_proposal(api, 10_000)
    message_id, service = uuid4().hex, stack.processes["proposals"]
    async with row_locked(infra, "proposals", proposal["id"]):
        correlation_id = await probe.send(
            "proposals.record_payment", payment(proposal["id"], 2_000), org=org, message_id=message_id
        )
        await eventually(
            lambda: service.logged("command.retry_scheduled", command_id=message_id), 10, what="a retry to be scheduled"
        )
    (reply,) = await probe.reply(correlation_id)
    assert reply.status == 201 and reply.headers["x-attempt"] >= 2
    assert reply.body["proposal"]["balance_minor"] == 8_000
    assert len((await detail(api, proposal["id"]))["payments"]) == 1


# Refunds ---------------------------------------------------------------------------
async def test_refunds_never_exceed_what_was_paid(api: Api, probe: Probe, org: str) -> None:
    proposal = await accepted_proposal(api, 10_000)
    paid = (await pay(api, proposal["id"], 4_000))["payment"]
    status, _, body = await api.post(
        "/api/payments/refund", {"paymentId": paid["id"], "amountMinor": 1_500, "reason": "partial"}
    )
    assert status == 201, body
    assert (body["refund"]["amount_minor"], body["refund"]["currency"], body["refund"]["reason"]) == (
        1_500,
        "USD",
        "partial",
    )
    assert body["payment"]["refunded_minor"] == 1_500
    assert (body["proposal"]["paid_minor"], body["proposal"]["balance_minor"]) == (2_500, 7_500)
    status, _, problem = await api.post("/api/payments/refund", {"paymentId": paid["id"], "amountMinor": 2_501})
    assert (status, problem["type"], problem["refundableMinor"]) == (409, "/problems/refund-too-large", 2_500)
    status, _, last = await api.post("/api/payments/refund", {"paymentId": paid["id"], "amountMinor": 2_500})
    assert status == 201 and last["payment"]["refunded_minor"] == 4_000 and last["proposal"]["paid_minor"] == 0
    status, _, problem = await api.post("/api/payments/refund", {"paymentId": paid["id"], "amountMinor": 1})
    assert (status, problem["refundableMinor"]) == (409, 0)
    read = await detail(api, proposal["id"])
    assert [r["amount_minor"] for r in read["refunds"]] == [1_500, 2_500]
    await pay(api, proposal["id"], 10_000)  # refunded money is owed again
    await barrier(probe, org)
    events = probe.events_of(org, "payments.refunded", proposal["lead_id"])
    assert [(e["data"]["amountMinor"], e["data"]["balanceMinor"]) for e in events] == [(1_500, 7_500), (2_500, 10_000)]


async def test_refunds_at_once_never_exceed_the_payment(api: Api) -> None:
    proposal = await accepted_proposal(api, 10_000)
    paid = (await pay(api, proposal["id"], 500))["payment"]
    answers = await asyncio.gather(
        *(api.post("/api/payments/refund", {"paymentId": paid["id"], "amountMinor": 200}) for _ in range(4))
    )
    assert sorted(a[0] for a in answers) == [201, 201, 409, 409], answers
    read = await detail(api, proposal["id"])
    assert read["payments"][0]["refunded_minor"] == 400 and read["proposal"]["paid_minor"] == 100


async def test_a_refund_delivered_twice_on_the_broker_refunds_once(api: Api, probe: Probe, org: str) -> None:
    proposal = await accepted_proposal(api, 10_000)
    paid = (await pay(api, proposal["id"], 3_000))["payment"]
    message_id = uuid4().hex
    body = {"paymentId": paid["id"], "amountMinor": 1_000}
    correlation_id = await probe.send("proposals.refund_payment", body, org=org, message_id=message_id)
    await probe.send("proposals.refund_payment", body, org=org, message_id=message_id, correlation_id=correlation_id)
    first, second = await probe.reply(correlation_id, count=2)
    assert first.status == second.status == 201 and first.body == second.body
    assert len((await detail(api, proposal["id"]))["refunds"]) == 1
    await barrier(probe, org)
    assert len(probe.events_of(org, "payments.refunded", proposal["lead_id"])) == 1


async def test_another_organisation_s_proposals_and_payments_are_404(api: Api) -> None:
    stranger = api.as_user(f"other-{uuid4().hex[:6]}")
    theirs = await accepted_proposal(stranger, 10_000)
    their_payment = (await pay(stranger, theirs["id"], 1_000))["payment"]
    for proposal_id in (theirs["id"], str(uuid4()), "not-a-uuid"):
        status, _, problem = await api.post("/api/payments", payment(proposal_id, 100))
        assert (status, problem["type"]) == (404, "/problems/not-found"), problem
    for payment_id in (their_payment["id"], str(uuid4()), "not-a-uuid"):
        status, _, problem = await api.post("/api/payments/refund", {"paymentId": payment_id, "amountMinor": 100})
        assert (status, problem["type"]) == (404, "/problems/not-found"), problem
    read = await detail(stranger, theirs["id"])
    assert read["refunds"] == [] and read["proposal"]["paid_minor"] == 1_000


async def test_the_database_holds_the_totals_to_their_rows(api: Api, infra: Infra) -> None:
    """Whatever the code above does, the paid total can never leave 0..amount (the CHECKs)."""
    proposal = await accepted_proposal(api, 1_000)
    await pay(api, proposal["id"], 1_000)
    try:
        await sql(infra, "UPDATE proposals.proposals SET paid_minor = paid_minor + 1 WHERE id = $1", proposal["id"])
    except Exception as exc:  # noqa: BLE001
        assert "check" in str(exc).lower()
    else:
        raise AssertionError("an overpaid total was stored")
    totals = await sql(
        infra,
        "SELECT p.paid_minor, (SELECT sum(amount_minor) FROM proposals.payments "
        "WHERE proposal_id = p.id) AS rows FROM proposals.proposals p WHERE p.id = $1",
        proposal["id"],
        method="fetchrow",
    )
    assert (totals["paid_minor"], totals["rows"]) == (1_000, 1_000)  # type: ignore[index]
