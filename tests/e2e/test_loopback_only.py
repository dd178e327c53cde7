"""What must never leave this machine answers only on loopback, even where the process listens on every address:
the development sign-in (a token to anyone who asks) and the Twilio sandbox's control API (it signs webhooks)."""

import socket
from uuid import uuid4

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from services.twilio_sandbox.app import SandboxSettings, init_app
from tests.conftest import Api
from tests.support.stack import Stack, free_port, wait_http


def outward_address() -> str:
    """This machine's address on its default route (a UDP socket's choice: no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            address = probe.getsockname()[0]
        except OSError:
            address = ""
    if not address or address.startswith("127."):
        pytest.skip("this machine has no address but loopback: nothing to call from")
    return address


async def test_the_dev_sign_in_answers_this_machine_only(api: Api, stack: Stack) -> None:
    address, port, org = outward_address(), free_port(), f"demo-{uuid4().hex[:6]}"
    dev = stack.start(
        "gateway-dev-wide",
        "services.gateway",
        GATEWAY_HOST="0.0.0.0",
        GATEWAY_PORT=str(port),
        DEV_LOGIN="true",
        DEV_LOGIN_ORG=org,
    )
    try:
        await wait_http(f"http://127.0.0.1:{port}/readyz", 30, "the DEV_LOGIN gateway on every address")
        for path, method in (("/dev/token", "POST"), ("/dev/login", "GET")):
            async with api.http.request(method, f"http://{address}:{port}{path}") as response:
                body = await response.json()
                assert (response.status, body["type"]) == (403, "/problems/forbidden"), body
                assert "this machine" in body["detail"]
        async with api.http.post(f"http://127.0.0.1:{port}/dev/token") as response:
            assert response.status == 200 and (await response.json())["org"] == org
        async with api.http.get(f"http://{address}:{port}/healthz") as response:
            assert response.status == 200  # the gateway itself answers there: only the sign-in does not
    finally:
        dev.stop()


async def test_the_sandbox_control_api_answers_on_loopback_only() -> None:
    address = outward_address()
    settings = SandboxSettings(SANDBOX_INBOUND_URL=None, APP_ENV="development")
    async with TestServer(init_app(settings), host="0.0.0.0") as server, aiohttp.ClientSession() as http:
        async with http.get(f"http://{address}:{server.port}/_sandbox/messages") as response:
            assert response.status == 404
        async with http.post(f"http://{address}:{server.port}/_sandbox/reset", json={}) as response:
            assert response.status == 404
        async with http.get(f"http://127.0.0.1:{server.port}/_sandbox/messages") as response:
            assert response.status == 200
        # Twilio's API (what the SMS service calls) answers on every address: 401 without credentials.
        async with http.get(f"http://{address}:{server.port}/2010-04-01/Accounts/AC1/Messages.json") as response:
            assert response.status == 401
