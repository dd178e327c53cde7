"""Fixtures shared by every tier: isolated infrastructure, the running stack, clients.

Unit tests need none of these; they are created only when a test asks for them.
"""

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import aio_pika
import aiohttp
import pytest

from services.gateway.auth import issue
from shared.identity import own_user
from tests.support import infra as infra_mod
from tests.support.broker import Probe
from tests.support.sandbox import Sandbox
from tests.support.stack import TEST_SECRET, Stack, eventually, free_port

# Fast retry tiers and short lock timeouts so that retry and parking finish in
# seconds; the gateway waits 3 s for an answer before it says 202.
STACK_ENV = {
    "RETRY_DELAYS": "0.2,0.4,0.8",
    "LOCK_TIMEOUT_MS": "300",
    "REPLY_TIMEOUT": "3",
    "PUBLISH_TIMEOUT": "2",
    "QUERY_TIMEOUT": "3",
    # A breaker that opens after 4 failed calls in a row and tries again 1.5 s later.
    "BREAKER_WINDOW": "4",
    "BREAKER_MIN_CALLS": "4",
    "BREAKER_WAIT_OPEN_SECONDS": "1.5",
    "BREAKER_HALF_OPEN_CALLS": "1",
    "TWILIO_TIMEOUT": "2",
    "SANDBOX_CALLBACK_DELAY": "0.05",
    # Documents: an upload no document refers to is collected 2 s after it was stored, looked for twice a second.
    "BLOB_GRACE_SECONDS": "2",
    "BLOB_GC_INTERVAL_SECONDS": "0.5",
    # Campaigns: a send rate that keeps their tests short, and a dispatched send that the SMS service has not
    # seen after 2 s (a crash between commit and publish) is published again.
    "SMS_CAMPAIGN_RATE_PER_SECOND": "25",
    "SMS_CAMPAIGN_SWEEP_SECONDS": "2",
}


# The JavaScript SDK's example pages (tests/browser/test_sdk.py) are served from this origin: another one than the
# gateway's, allowed by the gateway's CORS setting.
EXAMPLE_ORIGIN = f"http://localhost:{free_port()}"
STACK_ENV["CORS_ALLOWED_ORIGINS"] = EXAMPLE_ORIGIN

SERVICES = ("leads", "bookings", "sms", "proposals", "documents")


@pytest.fixture(scope="session")
async def infra() -> AsyncIterator[infra_mod.Infra]:
    provisioned = await infra_mod.provision()
    yield provisioned
    await infra_mod.release(provisioned)


@pytest.fixture(scope="session")
async def stack(infra: infra_mod.Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    blobs = {"BLOB_DIR": str(tmp_path_factory.mktemp("blobs"))}  # the gateway's and the documents service's
    running = Stack({**infra.env(), **STACK_ENV, **blobs}, tmp_path_factory.mktemp("logs"))
    try:
        running.start("twilio_sandbox")
        await running.wait_sandbox_ready()
        for service in SERVICES:
            running.start(service, METRICS_PORT=str(running.metrics_ports.setdefault(service, free_port())))
        for service in SERVICES:
            await running.wait_started(service)
        running.start("gateway")
        await running.wait_gateway_ready()
    except BaseException:
        running.stop_all()  # a stack that failed to start must not outlive the run
        raise
    yield running
    running.stop_all()


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def org() -> str:
    """A fresh organisation per test: tests share the database without seeing each other."""
    return f"org-{uuid4().hex[:8]}"


class Api:
    def __init__(self, http: aiohttp.ClientSession, url: str, token: str):
        self.http, self.url, self.token = http, url, token

    def as_user(self, org: str, user: str = "agent-1") -> "Api":
        return Api(self.http, self.url, issue(TEST_SECRET, org, user))

    async def request(
        self, method: str, path: str, body: object = None, key: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict, object]:
        all_headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        if key is not None:
            all_headers["Idempotency-Key"] = key
        data = (
            body
            if isinstance(body, (bytes, str, aiohttp.Payload))
            else (json.dumps(body) if body is not None else None)
        )
        async with self.http.request(method, self.url + path, data=data, headers=all_headers) as response:
            text = await response.text()
            return response.status, dict(response.headers), json.loads(text) if text else None

    async def post(self, path: str, body: object, **kw: object) -> tuple[int, dict, object]:
        return await self.request("POST", path, body, **kw)  # type: ignore[arg-type]

    async def upload(
        self,
        path: str,
        data: bytes | aiohttp.MultipartWriter,
        filename: str = "file.bin",
        content_type: str | None = None,
        **kw: object,
    ) -> tuple[int, dict, object]:
        """POST a multipart body: `data` as the part `file` (or a body made by the test)."""
        if isinstance(data, bytes):
            form = aiohttp.FormData()
            form.add_field("file", io.BytesIO(data), filename=filename, content_type=content_type)
            data = form()  # type: ignore[assignment]
        return await self.request("POST", path, data, **kw)  # type: ignore[arg-type]

    async def get(self, path: str, **kw: object) -> tuple[int, dict, object]:
        return await self.request("GET", path, **kw)  # type: ignore[arg-type]

    async def create_lead(self, name: str = "Ada Lovelace", phone: str = "+14155550100") -> dict:
        status, _, body = await self.post("/api/leads", {"name": name, "phone": phone})
        assert status == 201, body
        return body["lead"]  # type: ignore[index]


@pytest.fixture
def api(http: aiohttp.ClientSession, stack: Stack, org: str) -> Api:
    return Api(http, stack.url, issue(TEST_SECRET, org, "agent-1"))


@pytest.fixture
async def amqp(infra: infra_mod.Infra) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    """A publisher-confirmed channel on the test vhost, for tests that talk to the broker directly."""
    connection = await aio_pika.connect(infra.amqp_url)
    channel = await connection.channel()
    yield channel
    await connection.close()


@pytest.fixture
def log_dir(stack: Stack) -> Path:
    return stack.log_dir


@pytest.fixture
async def probe(amqp: aio_pika.abc.AbstractChannel, stack: Stack, infra: infra_mod.Infra) -> Probe:
    return await Probe(amqp, broker_user=own_user(infra.amqp_url)).start()


@pytest.fixture
async def sandbox(http: aiohttp.ClientSession, stack: Stack, api: Api) -> AsyncIterator[Sandbox]:
    """The Twilio sandbox, behaving well, and an SMS service whose circuit breaker lets calls through
    (closed, or half-open: then the test's first call is the trial that closes it)."""

    handle = Sandbox(http, stack.sandbox_url)
    await handle.behave(mode="ok")

    async def breaker_lets_calls_through() -> bool:
        async with http.get(stack.url + "/readyz") as response:
            return (await response.json())["services"]["sms"].get("breaker") in ("closed", "half_open")

    await eventually(breaker_lets_calls_through, 30, 0.2, "the SMS circuit breaker to let calls through")
    yield handle
    await handle.behave(mode="ok")
