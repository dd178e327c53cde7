"""The Phase 3 buttons through the Python client's generated methods and the `crm` subcommands:
a deal from booking to signed contract, a campaign, refusals typed, the same key on a retry."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import crm_client
import pytest

from tests.conftest import Api
from tests.e2e.test_client import crm
from tests.support.clock import noon_zone
from tests.support.sandbox import Sandbox
from tests.support.stack import Stack, eventually


def later(days: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


async def test_a_deal_from_booking_to_signed_contract_through_the_client(api: Api, stack: Stack) -> None:
    async with crm_client.Client(stack.url, api.token) as client:
        lead = (await client.create_lead("Ada Deal", "+14155550100"))["lead"]["id"]
        appointment = (await client.create_appointment(lead, later(2), 30, "Intro"))["appointment"]["id"]
        moved = await client.reschedule_appointment(appointment, later(3))
        assert moved["appointment"]["status"] == "scheduled" and moved["clashes"] == []
        proposal = (await client.send_proposal(lead, "Redesign", 250_000, "USD", later(30)))["proposal"]
        assert (await client.accept_proposal(proposal["id"]))["proposal"]["status"] == "accepted"
        paid = await client.record_payment(proposal["id"], 100_000, "USD", "card", f"ref-{uuid4()}")
        assert paid["proposal"]["balance_minor"] == 150_000
        with pytest.raises(crm_client.Conflict) as refused:  # more than the balance: a typed refusal
            await client.record_payment(proposal["id"], 200_000, "USD", "card", f"ref-{uuid4()}")
        assert refused.value.problem["type"] == "/problems/overpayment"
        contract = (await client.create_contract(proposal["id"]))["contract"]
        await client.send_contract(contract["id"])
        signed = await client.sign_contract(contract["id"], "Ada Lovelace")
        assert signed["contract"]["status"] == "signed"
        detail = await client.get_proposal(proposal["id"])
        assert [c["status"] for c in detail["contracts"]] == ["signed"] and len(detail["payments"]) == 1
        timeline = await client.lead_timeline(lead)
        assert [e["type"] for e in timeline["timeline"]][:2] == ["proposals.sent", "proposals.accepted"]
        assert (await client.get_lead(lead))["lead"]["status"] in ("proposal", "won")  # the lead follows (events)


async def test_the_command_line_runs_the_new_buttons(api: Api, stack: Stack, sandbox: Sandbox) -> None:
    env = {"CRM_URL": stack.url, "CRM_TOKEN": api.token}
    status, _, created = await api.post(
        "/api/leads", {"name": "Cli Deal", "phone": f"+1415555{uuid4().int % 10000:04d}", "timeZone": noon_zone()}
    )
    assert status == 201, created
    lead = created["lead"]["id"]
    code, (sent,), _ = await crm("proposal", "send", lead, "Audit", "50000", "EUR", later(10).isoformat(), env=env)
    assert code == 0 and sent["proposal"]["amount_minor"] == 50000
    code, (problem,), _ = await crm("payment", "record", sent["proposal"]["id"], "100", "EUR", "card", "r-1", env=env)
    assert code == 1 and problem["type"] == "/problems/proposal-not-accepted"
    status, _, template = await api.post(
        "/api/sms/templates", {"name": f"t-{uuid4().hex[:8]}", "body": "Hi {{first_name}}!"}
    )
    assert status == 201, template
    code, (campaign,), _ = await crm(
        "campaign", "create", "Spring", template["template"]["id"], "--lead-ids", lead, env=env
    )
    assert code == 0 and campaign["campaign"]["status"] == "draft", campaign
    code, (started,), _ = await crm("campaign", "start", campaign["campaign"]["id"], env=env)
    assert code == 0 and started["campaign"]["status"] in ("running", "completed")

    async def texted() -> bool:
        code, (seen,), _ = await crm("campaign", "get", campaign["campaign"]["id"], "--limit", "10", env=env)
        return code == 0 and [t["state"] for t in seen["targets"]] in (["sent"], ["skipped"])

    await eventually(texted, 60, 0.5, "the campaign's one lead to be texted")
