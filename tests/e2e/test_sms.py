"""SMS through HTTP, the broker and the Twilio sandbox (the official twilio client, a local fake API)."""

from uuid import uuid4

import pytest

from tests.conftest import Api
from tests.support.broker import Probe
from tests.support.sandbox import Sandbox
from tests.support.stack import eventually


async def lead_with(api: Api, phone: str, name: str = "Grace Hopper") -> str:
    return (await api.create_lead(name, phone))["id"]


def fresh_phone() -> str:
    """A number no other test of the run texts (the sandbox keeps every message of the run): 8 million of them."""
    return f"+1415{200 + uuid4().int % 800}{uuid4().int % 10000:04d}"


async def history(api: Api, lead: str) -> list[dict]:
    status, _, body = await api.get(f"/api/leads/{lead}/sms-history")
    assert status == 200, body
    return body["sms_messages"]


async def test_send_an_sms_then_read_its_history(api: Api, sandbox: Sandbox, probe: Probe, org: str) -> None:
    phone = fresh_phone()
    lead = await lead_with(api, phone)
    status, _, body = await api.post("/api/leads/send-sms", {"leadId": lead, "message": "  Hello there  "})
    assert status == 200, body
    sms = body["sms"]
    assert sms["status"] == "sent" and sms["sentAt"] and sms["id"]
    (sent,) = await sandbox.messages_to(phone)
    assert sent["body"] == "Hello there"
    (record,) = await eventually(lambda: history_when(api, lead, "delivered"), 10, what="the delivery callback")
    assert (record["id"], record["provider_sid"], record["segments"]) == (sms["id"], sent["sid"], 1)
    assert record["delivered_at"] and record["error_code"] is None
    await probe.barrier(org)
    assert [e["data"]["providerSid"] for e in probe.events_of(org, "sms.sent")] == [sent["sid"]]
    changes = [(e["data"]["from"], e["data"]["to"]) for e in probe.events_of(org, "sms.status_changed")]
    assert changes[-1][1] == "delivered"


async def history_when(api: Api, lead: str, status: str) -> list[dict] | None:
    records = await history(api, lead)
    return records if records and records[0]["status"] == status else None


@pytest.mark.parametrize(
    "body",
    [
        {"message": "   "},
        {"message": "x" * 1601},
        {},
    ],
)
async def test_bad_messages_are_422(api: Api, sandbox: Sandbox, body: dict) -> None:
    lead = await lead_with(api, fresh_phone())
    calls = await sandbox.calls()
    status, _, problem = await api.post("/api/leads/send-sms", {"leadId": lead, **body})
    assert status == 422, problem
    assert await sandbox.calls() == calls


async def test_unknown_or_foreign_leads_are_404(api: Api, sandbox: Sandbox) -> None:
    theirs = await lead_with(api.as_user(f"other-{uuid4().hex[:6]}"), fresh_phone())
    for lead in (theirs, str(uuid4()), "nope"):
        status, _, _ = await api.post("/api/leads/send-sms", {"leadId": lead, "message": "hi"})
        assert status == 404
        assert (await api.get(f"/api/leads/{lead}/sms-history"))[0] == 404


async def test_templates_fill_fields_from_the_lead(api: Api, sandbox: Sandbox) -> None:
    phone = fresh_phone()
    lead = await lead_with(api, phone, "Ada Lovelace")
    status, _, body = await api.post("/api/sms/templates", {"name": "hello", "body": "Hi {{ first_name }}!"})
    assert status == 201 and body["template"]["fields"] == ["first_name"]
    template = body["template"]["id"]
    assert (await api.post("/api/sms/templates", {"name": "hello", "body": "again"}))[0] == 409
    status, _, problem = await api.post("/api/sms/templates", {"name": "bad", "body": "Hi {{ shoe_size }}"})
    assert status == 422 and "shoe_size" in problem["detail"]
    status, _, listed = await api.get("/api/sms/templates")
    assert status == 200 and [t["name"] for t in listed["templates"]] == ["hello"]
    status, _, _ = await api.post("/api/leads/send-sms", {"leadId": lead, "templateId": template})
    assert status == 200
    assert [m["body"] for m in await sandbox.messages_to(phone)] == ["Hi Ada!"]
    status, _, _ = await api.post("/api/leads/send-sms", {"leadId": lead, "templateId": str(uuid4())})
    assert status == 404


@pytest.mark.parametrize(
    ("phone", "code"),
    [("+15005550001", 21211), ("+15005550009", 21614), ("+15005550002", 21612), ("+15005550003", 21408)],
)
async def test_a_permanent_provider_error_fails_the_sms_once(api: Api, sandbox: Sandbox, phone: str, code: int) -> None:
    lead = await lead_with(api, phone)
    calls = await sandbox.calls()
    status, _, problem = await api.post("/api/leads/send-sms", {"leadId": lead, "message": "hi"})
    assert status == 422 and problem["code"] == code and problem["smsId"]
    (record,) = await history(api, lead)
    assert (record["id"], record["status"], record["error_code"]) == (problem["smsId"], "failed", code)
    assert await sandbox.calls() == calls + 1  # not retried


async def test_an_unsubscribed_number_opts_the_lead_out(api: Api, sandbox: Sandbox) -> None:
    lead = await lead_with(api, "+15005550004")
    status, _, problem = await api.post("/api/leads/send-sms", {"leadId": lead, "message": "hi"})
    assert status == 409 and problem["type"] == "/problems/opted-out"
    calls = await sandbox.calls()
    status, _, problem = await api.post("/api/leads/send-sms", {"leadId": lead, "message": "again"})
    assert status == 409 and problem["type"] == "/problems/opted-out"
    assert await sandbox.calls() == calls  # refused without asking the provider


async def test_transient_failures_are_retried_then_sent_once(api: Api, sandbox: Sandbox) -> None:
    phone = fresh_phone()
    lead = await lead_with(api, phone)
    await sandbox.behave(mode="error", status=503, count=2)
    status, _, body = await api.post("/api/leads/send-sms", {"leadId": lead, "message": "later"})
    assert status == 200 and body["sms"]["status"] == "queued"
    await eventually(lambda: history_when(api, lead, "delivered"), 20, what="the retried SMS to be delivered")
    assert len(await sandbox.messages_to(phone)) == 1


async def test_the_same_key_sends_once(api: Api, sandbox: Sandbox) -> None:
    phone = fresh_phone()
    lead = await lead_with(api, phone)
    key = str(uuid4())
    first = await api.post("/api/leads/send-sms", {"leadId": lead, "message": "once"}, key=key)
    again = await api.post("/api/leads/send-sms", {"leadId": lead, "message": "once"}, key=key)
    assert first[0] == again[0] == 200 and first[2] == again[2]
    assert again[1]["Idempotent-Replayed"] == "true"
    assert len(await sandbox.messages_to(phone)) == 1


async def test_sms_history_is_the_organisations_own(api: Api, sandbox: Sandbox) -> None:
    lead = await lead_with(api, fresh_phone())
    await api.post("/api/leads/send-sms", {"leadId": lead, "message": "mine"})
    stranger = api.as_user(f"other-{uuid4().hex[:6]}")
    assert (await stranger.get(f"/api/leads/{lead}/sms-history"))[0] == 404
    assert [m["body"] for m in await history(api, lead)] == ["mine"]
