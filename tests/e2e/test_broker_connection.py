"""The gateway loses its broker connection: screens are told to reload, buttons work again."""
import asyncio
import shutil
import subprocess
from urllib.parse import urlsplit

import aiohttp
import pytest

from services.gateway.auth import issue
from tests.conftest import Api
from tests.support.infra import Infra
from tests.support.stack import TEST_SECRET, eventually

pytestmark = pytest.mark.skipif(not shutil.which("rabbitmqctl"), reason="needs rabbitmqctl to cut a connection")


def close_gateway_connections(vhost: str) -> int:
    # list_connections lists every vhost's: keep only this run's gateway, never another run's or `make run`'s.
    listing = subprocess.run(["rabbitmqctl", "-q", "list_connections", "--no-table-headers",
                              "pid", "vhost", "client_properties"], capture_output=True, text=True, check=True, timeout=60)
    pids = [line.split()[0] for line in listing.stdout.splitlines()
            if len(line.split()) > 1 and line.split()[1] == vhost and "gateway." in line]
    for pid in pids:
        subprocess.run(["rabbitmqctl", "-q", "close_connection", pid, "test: cut"], check=True, timeout=60)
    return len(pids)


async def test_screens_reload_and_buttons_work_after_the_connection_comes_back(
        api: Api, infra: Infra, org: str) -> None:
    lead = (await api.create_lead())["id"]
    async with api.http.ws_connect(api.url.replace("http", "ws") + "/ws") as ws:
        await ws.send_json({"type": "hello", "token": issue(TEST_SECRET, org, "viewer"), "topics": ["#"]})
        assert (await ws.receive_json(timeout=10))["type"] == "welcome"
        vhost = urlsplit(infra.amqp_url).path.lstrip("/")
        assert await asyncio.to_thread(close_gateway_connections, vhost) >= 1
        message = await ws.receive(timeout=30)
        while message.type == aiohttp.WSMsgType.TEXT:  # events sent before the cut (the lead's, say)
            message = await ws.receive(timeout=30)
        assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 1013)

    async def press() -> bool:
        status, _, _ = await api.post("/api/leads/update-status", {"leadId": lead, "status": "contacted"})
        return status == 200

    await eventually(press, 30, 0.5, "a button to work again after the reconnection")
