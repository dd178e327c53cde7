"""A stalled consumer is not ready: a message held past MESSAGE_DEADLINE_SECONDS is logged with its id, counted
(`crm_stalled_messages`), and /readyz answers 503 naming the service until it is let go (shared/stalls.py).

Held for real, not through a hook: the SMS service waits on a provider that answers slowly (the sandbox), with
a deadline shorter than that wait.
"""

import asyncio
from collections.abc import AsyncIterator
from uuid import uuid4

import aiohttp
import pytest

from tests.conftest import Api
from tests.e2e.test_sms import fresh_phone
from tests.support.sandbox import Sandbox
from tests.support.stack import Stack, eventually

PROVIDER_WAIT = 5.0  # the one slow answer
DEADLINE = 0.5


@pytest.fixture
async def impatient_sms(stack: Stack, sandbox: Sandbox) -> AsyncIterator[None]:
    """The SMS service with a short deadline (and a provider timeout above the slow answer); the usual one after."""
    stack.start("sms", MESSAGE_DEADLINE_SECONDS=str(DEADLINE), TWILIO_TIMEOUT="10")
    await stack.wait_started("sms")
    try:
        yield
    finally:
        await sandbox.behave(mode="ok")
        stack.start("sms")
        await stack.wait_started("sms")


async def readyz(http: aiohttp.ClientSession, stack: Stack) -> tuple[int, dict]:
    async with http.get(stack.url + "/readyz") as response:
        return response.status, await response.json()


async def stalled_gauge(http: aiohttp.ClientSession, stack: Stack) -> float:
    async with http.get(f"http://127.0.0.1:{stack.metrics_ports['sms']}/metrics") as response:
        text = await response.text()
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith("crm_stalled_messages "))


async def test_a_message_held_past_its_deadline_makes_the_service_not_ready_until_it_is_let_go(
    impatient_sms: None, api: Api, sandbox: Sandbox, stack: Stack, http: aiohttp.ClientSession
) -> None:
    lead = await api.create_lead("Slow Provider", fresh_phone())
    await readyz(http, stack)
    await sandbox.behave(mode="slow", delay=PROVIDER_WAIT, count=1)
    key = uuid4().hex
    press = asyncio.create_task(api.post("/api/leads/send-sms", {"leadId": lead["id"], "message": "Hold on"}, key=key))

    async def not_ready() -> dict | None:
        status, body = await readyz(http, stack)
        return body if status == 503 and "sms" in body.get("not_ready", {}) else None

    body = await eventually(not_ready, PROVIDER_WAIT, 0.1, "/readyz to name the stalled SMS service")
    assert "held past" in body["not_ready"]["sms"][0], body
    assert body["services"]["sms"]["ready"] is False and body["services"]["sms"]["stalled"] == 1
    assert await stalled_gauge(http, stack) == 1
    assert stack.processes["sms"].logged("consumer.stalled"), "the stalled message is logged with its id"

    status, _, answer = await press  # the slow answer came: the SMS was sent, once
    assert status in (200, 202), answer

    async def ready_again() -> bool:
        status, body = await readyz(http, stack)
        return status == 200 and body["services"]["sms"]["ready"] is True

    await eventually(ready_again, 15, 0.2, "/readyz to be ready again")
    assert await stalled_gauge(http, stack) == 0
    messages = [m for m in (await sandbox.received())["messages"] if m["to"] == lead["phone"]]
    assert len(messages) == 1
