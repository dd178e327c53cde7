"""The gateway loses its broker connection: screens stay open and miss nothing, buttons work again."""

import asyncio
import shutil
import subprocess
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.conftest import Api
from tests.support.infra import Infra
from tests.support.realtime import ResumingScreen
from tests.support.stack import Stack, eventually

pytestmark = pytest.mark.skipif(not shutil.which("rabbitmqctl"), reason="needs rabbitmqctl to cut a connection")


def close_gateway_connections(vhost: str) -> int:
    # list_connections lists every vhost's: keep only this run's gateway, never another run's or `make run`'s.
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "--no-table-headers", "pid", "vhost", "client_properties"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    pids = [
        line.split()[0]
        for line in listing.stdout.splitlines()
        if len(line.split()) > 1 and line.split()[1] == vhost and "gateway." in line
    ]
    for pid in pids:
        subprocess.run(["rabbitmqctl", "-q", "close_connection", pid, "test: cut"], check=True, timeout=60)
    return len(pids)


async def test_no_screen_is_closed_and_nothing_is_missed_when_the_connection_comes_back(
    api: Api, infra: Infra, org: str, http: aiohttp.ClientSession, stack: Stack
) -> None:
    leads = [(await api.create_lead(f"Lead {i}"))["id"] for i in range(5)]
    screen = ResumingScreen(http, stack.url, org, ["leads.status_changed"])
    await screen.connect()
    vhost = urlsplit(infra.amqp_url).path.lstrip("/")
    assert await asyncio.to_thread(close_gateway_connections, vhost) >= 2  # commands and the log reader

    async def press(lead: str) -> bool:
        status, _, _ = await api.post(
            "/api/leads/update-status", {"leadId": lead, "status": "contacted"}, key=f"after-cut-{lead}"
        )
        return status == 200

    for lead in leads:  # made while, and right after, the gateway reconnects
        await eventually(lambda lead=lead: press(lead), 30, 0.5, "a button to work again after the reconnection")
    await eventually(lambda: len(screen.events) >= 5, 30, what="every change made around the cut")
    assert sorted(e["data"]["leadId"] for e in screen.events) == sorted(leads)
    assert not screen.closed  # the screen stayed open through it all
    await screen.drop()
