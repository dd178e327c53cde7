"""Reply or accept: 202 while the service is down, 503 while the broker is unreachable."""

import asyncio
import time
from uuid import uuid4, uuid5

import aiohttp

from services.gateway.views import KEY_NAMESPACE
from tests.conftest import Api
from tests.integration.test_delivery import history
from tests.support.forward import Forward, via
from tests.support.infra import Infra
from tests.support.stack import Stack, eventually, free_port


async def test_accepted_while_the_service_is_stopped_then_done_once_it_starts(
    api: Api, stack: Stack, infra: Infra
) -> None:
    lead = (await api.create_lead())["id"]
    stack.processes["leads"].stop()
    try:
        status, headers, body = await api.post(
            "/api/leads/update-status", {"leadId": lead, "status": "won"}, key=str(uuid4())
        )
        assert status == 202, body
        assert body["command"]["status"] == "accepted"
        location = headers["Location"]
        assert location == f"/api/commands/leads/{body['command']['id']}"
        assert await history(infra, lead) == []
        still = await api.get(location)  # the service is down: still accepted, not an error
        assert (still[0], still[2]["command"]["status"], still[1]["Location"]) == (202, "accepted", location)
    finally:
        stack.start("leads")
        await stack.wait_started("leads")

    async def final() -> tuple | None:
        answer = await api.get(location)
        return answer if answer[0] != 202 else None

    status, _, answer = await eventually(final, 20, 0.2, "the accepted command's final answer")
    assert status == 200 and answer["lead"]["status"] == "won"
    assert len(await history(infra, lead)) == 1


async def test_a_command_status_is_shown_to_its_own_organisation_only(api: Api, org: str) -> None:
    lead = (await api.create_lead())["id"]
    key = str(uuid4())
    done = await api.post("/api/leads/update-status", {"leadId": lead, "status": "lost"}, key=key)
    command_id = uuid5(KEY_NAMESPACE, "\n".join((org, "agent-1", "/api/leads/update-status", key)))
    status, _, body = await api.get(f"/api/commands/leads/{command_id}")
    assert (status, body) == (done[0], done[2])
    status, _, body = await api.as_user(f"other-{uuid4().hex[:6]}").get(f"/api/commands/leads/{command_id}")
    assert status == 202 and body == {"command": {"id": str(command_id), "status": "accepted"}}
    status, _, _ = await api.get("/api/commands/nosuchservice/x")
    assert status == 404


async def test_broker_unreachable_is_503_within_a_bounded_time(stack: Stack, api: Api) -> None:
    port = free_port()
    gateway = stack.start(
        "gateway-no-broker", "services.gateway", AMQP_URL="amqp://guest:guest@127.0.0.1:1/", GATEWAY_PORT=str(port)
    )
    url = f"http://127.0.0.1:{port}"

    async def alive() -> bool:
        try:
            async with api.http.get(url + "/healthz") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    try:
        await eventually(alive, 20, 0.1, "the gateway without a broker to be alive")
        async with api.http.get(url + "/readyz") as response:
            assert response.status == 503
            assert (await response.json())["checks"]["broker"] is False
        started = time.monotonic()
        async with api.http.post(
            url + "/api/leads",
            json={"name": "A", "phone": "+14155550100"},
            headers={"Authorization": f"Bearer {api.token}"},
        ) as response:
            assert response.status == 503
            assert response.headers["Retry-After"]
            assert (await response.json())["status"] == 503
        assert time.monotonic() - started < 5
    finally:
        gateway.stop()


async def test_readyz_is_503_while_the_database_is_unreachable(stack: Stack, api: Api) -> None:
    port = free_port()
    gateway = stack.start(
        "gateway-no-db", "services.gateway", DATABASE_URL="postgresql://postgres@127.0.0.1:1/x", GATEWAY_PORT=str(port)
    )
    try:

        async def answer() -> dict | None:
            try:
                async with api.http.get(f"http://127.0.0.1:{port}/readyz") as response:
                    return {**(await response.json()), "http_status": response.status}
            except aiohttp.ClientError:
                return None

        readiness = await eventually(answer, 20, 0.1, "the gateway without a database to answer")
        assert readiness["http_status"] == 503 and readiness["checks"]["database"] is False
    finally:
        gateway.stop()


async def test_the_health_tool_asks_a_service_over_the_broker(stack: Stack, infra: Infra) -> None:
    import subprocess
    import sys

    from tests.support.stack import ROOT

    def health(service: str) -> int:
        return subprocess.run(
            [sys.executable, "-m", "shared.tools.health", service],
            cwd=ROOT,
            timeout=60,
            env={"AMQP_URL": infra.amqp_url, "APP_ENV": "development", "PATH": "/usr/bin:/bin"},
            capture_output=True,
        ).returncode

    assert await asyncio.to_thread(health, "leads") == 0
    assert await asyncio.to_thread(health, "nosuchservice") == 1


async def test_a_service_started_before_its_database_and_broker_waits_for_them(
    api: Api, stack: Stack, infra: Infra
) -> None:
    database, broker = Forward(free_port(), infra.database_url), Forward(free_port(), infra.amqp_url)
    leads = stack.start(
        "leads", DATABASE_URL=via(infra.database_url, database.port), AMQP_URL=via(infra.amqp_url, broker.port)
    )
    try:
        await eventually(
            lambda: leads.logged("service.waiting", waiting_for="database"),
            15,
            what="the service to wait for its database",
        )
        await database.open()
        await eventually(
            lambda: leads.logged("service.waiting", waiting_for="broker"), 15, what="the service to wait for its broker"
        )
        assert leads.running
        await broker.open()
        await stack.wait_started("leads")
        assert await api.create_lead()  # answered: it consumes
    finally:
        try:
            await asyncio.to_thread(leads.stop)  # in a thread: its goodbyes pass through this loop's forwards
            stack.start("leads")  # the usual one, straight to the servers
            await stack.wait_started("leads")
        finally:
            await database.close()
            await broker.close()
