"""Reconciliation of an SMS whose send answer was lost finds the message Twilio accepted, as Twilio keeps it:
still queued (no date_sent) when the lease ends, or with a body Smart Encoding rewrote. Never two SMS.

Each test makes the attempt's outcome unknown the same way: the sandbox answers the send after
TWILIO_TIMEOUT (2 s) but accepts it, so the SMS stays "sending" until its lease (7 s) is over and
the service asks Twilio about it."""

from tests.conftest import Api
from tests.e2e.test_sms import fresh_phone, history, lead_with
from tests.integration.test_sms_faults import sid_recorded
from tests.support.sandbox import Sandbox
from tests.support.stack import Stack, eventually

LOST_ANSWER = {"mode": "slow", "delay": 3.0, "count": 1}  # past TWILIO_TIMEOUT; the sandbox accepts it anyway


async def send_with_lost_answer(api: Api, lead: str, message: str) -> None:
    status, _, body = await api.post("/api/leads/send-sms", {"leadId": lead, "message": message})
    assert status == 200 and body["sms"]["status"] == "queued", body


async def adopted(api: Api, sandbox: Sandbox, stack: Stack, phone: str, lead: str) -> dict:
    """The SMS row once its sid is recorded, after checking it is the one message Twilio holds for `phone`."""
    (record,) = await eventually(lambda: sid_recorded(api, lead), 40, what="the accepted message adopted")
    messages = await sandbox.messages_to(phone)
    assert len(messages) == 1, f"sent {len(messages)} times: {[m['body'] for m in messages]}"
    assert record["provider_sid"] == messages[0]["sid"]
    sent = messages[0]
    assert stack.processes["sms"].logged("sms.reconciled", sid=sent["sid"])
    return record


async def test_a_message_still_queued_at_twilio_when_the_lease_ends_is_adopted_not_sent_again(
    api: Api, sandbox: Sandbox, stack: Stack
) -> None:
    phone = fresh_phone()
    lead = await lead_with(api, phone)
    # Queued at Twilio far past the lease: no date_sent yet when the service asks, so a DateSent filter misses it.
    await sandbox.behave(**LOST_ANSWER, queued_for=60)
    await send_with_lost_answer(api, lead, "still in Twilio's queue")
    record = await adopted(api, sandbox, stack, phone, lead)
    assert record["status"] == "sent"
    (message,) = await sandbox.messages_to(phone)
    assert (message["status"], message["date_sent"]) == ("queued", None)  # it was found while still queued


async def test_a_body_rewritten_by_smart_encoding_is_recognised_and_not_sent_again(
    api: Api, sandbox: Sandbox, stack: Stack
) -> None:
    phone = fresh_phone()
    lead = await lead_with(api, phone)
    await sandbox.behave(**LOST_ANSWER, smart_encoding=True)
    await send_with_lost_answer(api, lead, "Your “VIP” slot — tomorrow’s 10:00…")
    record = await adopted(api, sandbox, stack, phone, lead)
    assert record["status"] in ("sent", "delivered")  # its status callbacks may follow at once
    (message,) = await sandbox.messages_to(phone)
    assert message["body"] == 'Your "VIP" slot - tomorrow\'s 10:00...'  # as Twilio keeps it
    (ours,) = await history(api, lead)
    assert ours["body"] == "Your “VIP” slot — tomorrow’s 10:00…"  # as the agent wrote it


async def test_a_sid_another_sms_holds_is_never_adopted(api: Api, sandbox: Sandbox, stack: Stack) -> None:
    """The same text to the same number twice: the first SMS's message falls in the second's window too."""
    phone = fresh_phone()
    lead = await lead_with(api, phone)
    status, _, body = await api.post("/api/leads/send-sms", {"leadId": lead, "message": "same words"})
    assert status == 200 and body["sms"]["status"] == "sent", body
    await sandbox.behave(**LOST_ANSWER)
    await send_with_lost_answer(api, lead, "same words")
    second, first = await eventually(lambda: both_recorded(api, lead), 40, what="the second SMS's message adopted")
    messages = await sandbox.messages_to(phone)
    assert len(messages) == 2, f"sent {len(messages)} times for two SMS"
    assert (first["provider_sid"], second["provider_sid"]) == (messages[0]["sid"], messages[1]["sid"])
    assert stack.processes["sms"].logged("sms.reconciled", sid=messages[1]["sid"])


async def both_recorded(api: Api, lead: str) -> list[dict] | None:
    records = await history(api, lead)  # newest first
    return records if len(records) == 2 and all(r["provider_sid"] for r in records) else None
