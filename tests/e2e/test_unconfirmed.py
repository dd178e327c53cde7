"""No 202 or 204 without a confirm: a command the broker did not confirm within PUBLISH_TIMEOUT is a 503 with
Retry-After (for a press and for Twilio's webhooks alike), and its retry with the same key has one effect."""

import asyncio
from uuid import uuid4

from tests.conftest import Api
from tests.e2e.test_sms import fresh_phone, lead_with
from tests.integration.test_delivery import history
from tests.integration.test_sms_faults import signed
from tests.support.broker import Probe
from tests.support.forward import Forward, via
from tests.support.infra import Infra
from tests.support.stack import Stack, eventually, free_port, wait_http


async def known_to_sms(api: Api, lead: str) -> bool:
    return (await api.get(f"/api/leads/{lead}/sms-history"))[0] == 200


async def test_an_unconfirmed_command_is_503_and_its_retry_has_one_effect(
    api: Api, stack: Stack, infra: Infra, probe: Probe, org: str
) -> None:
    broker = Forward(free_port(), infra.amqp_url)
    await broker.open()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gateway = stack.start(
        "gateway_late",
        module="services.gateway",
        GATEWAY_PORT=str(port),
        PUBLIC_URL=url,
        AMQP_URL=via(infra.amqp_url, broker.port),
        PUBLISH_TIMEOUT="1",
    )
    late = Api(api.http, url, api.token)
    try:
        await wait_http(url + "/readyz", 30, "the gateway whose broker can be held back")
        phone = fresh_phone()
        lead = await lead_with(late, phone)
        await eventually(lambda: known_to_sms(late, lead), 10, what="the SMS projection to know the lead")
        key = str(uuid4())
        stop = {
            "MessageSid": f"SM{uuid4().hex}",
            "AccountSid": "ACsandbox",
            "From": phone,
            "To": "+15005550006",
            "Body": "STOP",
        }
        webhook = url + "/webhooks/twilio/inbound"

        broker.pause()  # what the gateway sends reaches the broker; the confirm does not come back
        status, headers, problem = await late.post(
            "/api/leads/update-status", {"leadId": lead, "status": "won"}, key=key
        )
        assert status == 503, (status, problem)  # the old gateway said 202: "accepted", though it could not know
        assert problem["type"] == "/problems/unavailable" and "Idempotency-Key" in problem["detail"]
        assert headers["Retry-After"]
        async with api.http.post(webhook, data=stop, headers=signed(webhook, stop)) as answer:
            assert answer.status == 503 and answer.headers["Retry-After"], await answer.text()
        broker.resume()

        # The broker had taken both: each took effect once, though the gateway could not say so.
        await eventually(lambda: history_len(infra, lead, 1), 10, what="the unconfirmed status change")
        await eventually(lambda: probe.events_of(org, "sms.opt_out_changed"), 10, what="the unconfirmed STOP")
        status, headers, body = await late.post("/api/leads/update-status", {"leadId": lead, "status": "won"}, key=key)
        assert (status, body["lead"]["status"], headers.get("Idempotent-Replayed")) == (200, "won", "true")
        async with api.http.post(webhook, data=stop, headers=signed(webhook, stop)) as answer:
            assert answer.status == 200, await answer.text()  # what Twilio's retry gets
        sms = stack.processes["sms"]
        await eventually(
            lambda: sms.logged("command.done", command_id=f"twilio-inbound:{stop['MessageSid']}", replayed=True),
            10,
            what="the STOP's retry to be seen as a replay",
        )
        assert len(await history(infra, lead)) == 1
        assert len(probe.events_of(org, "sms.opt_out_changed")) == 1
    finally:
        broker.resume()
        await asyncio.to_thread(gateway.stop)  # in a thread: its goodbyes pass through this loop's forward
        await broker.close()


async def history_len(infra: Infra, lead: str, count: int) -> bool:
    return len(await history(infra, lead)) == count
