"""Start the measured processes: the real stack, the baseline app, and the floor (its app and its consumer).

The stack is started as tests/conftest.py starts it, with the `Stack` wiring
(PUBLIC_URL, TWILIO_BASE_URL, SANDBOX_PORT, SANDBOX_INBOUND_URL): the Twilio
sandbox (waited for), the leads, bookings and sms services (each waited for),
then the gateway (waited for on /readyz).

Everything runs with production settings except LOG_LEVEL=WARNING (so that
per-request log lines do not dominate) and SMS_CAMPAIGN_RATE_PER_SECOND (200,
bench.campaign). At that level a service does not log `service.started` (an
INFO line), so its readiness is read from the broker instead: its work queue
has a consumer and the queues it declares once started exist.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import aiohttp

from bench.campaign import CAMPAIGN_RATE
from bench.floor_worker import QUEUE as FLOOR_QUEUE
from shared.topology import ServiceTopology
from tests.support.infra import Infra
from tests.support.stack import TEST_SECRET, Process, Stack, eventually, free_port

QUIET = {"LOG_LEVEL": "WARNING"}
# The one setting that is not production's: campaigns send fast, so that their section takes seconds.
STACK_ENV = {**QUIET, "SMS_CAMPAIGN_RATE_PER_SECOND": str(CAMPAIGN_RATE)}
SERVICES = ("leads", "bookings", "sms", "proposals", "documents")


def _tail(process: Process) -> str:
    return process.log_path.read_text(errors="replace")[-2000:]


async def _has_consumer(connection: aio_pika.abc.AbstractConnection, queue: str, *also: str) -> bool:
    """`queue` has a consumer, and the queues `also` exist."""
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        for name in also:
            await channel.declare_queue(name, passive=True)
        await channel.close()
        return (declared.declaration_result.consumer_count or 0) > 0  # (always a count in a DeclareOk)
    except aio_pika.exceptions.AMQPError:
        return False


async def _consuming(connection: aio_pika.abc.AbstractConnection, topology: ServiceTopology) -> bool:
    return await _has_consumer(connection, topology.work.name, topology.parked.name)  # parked: declared after


async def wait_consuming(process: Process, amqp_url: str, service: str, timeout: float = 30) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        topology = ServiceTopology(service, ())
        await eventually(
            lambda: _consuming(connection, topology) if process.running else True, timeout, 0.1, f"{service} to consume"
        )
    finally:
        await connection.close()
    if not process.running:
        raise RuntimeError(f"{service} exited:\n{_tail(process)}")


async def start_pipeline(infra: Infra, log_dir: Path) -> Stack:
    stack = Stack({**infra.env(), **STACK_ENV, "BLOB_DIR": str(log_dir / "blobs")}, log_dir)
    try:
        sandbox = stack.start("twilio_sandbox")
        await eventually(
            lambda: _healthy(stack.sandbox_url, "/_sandbox/messages") if sandbox.running else True,
            30,
            0.1,
            "the Twilio sandbox to answer",
        )
        if not sandbox.running:
            raise RuntimeError(f"the Twilio sandbox exited:\n{_tail(sandbox)}")
        for service in SERVICES:
            stack.start(service)
        for service in SERVICES:
            await wait_consuming(stack.processes[service], infra.amqp_url, service)
        stack.start("gateway")
        await stack.wait_gateway_ready()
    except BaseException:
        stack.stop_all()
        raise
    return stack


async def _healthy(url: str, path: str = "/healthz") -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{url}{path}") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def start_baseline(infra: Infra, log_dir: Path) -> tuple[Process, str]:
    port = free_port()
    env = {**os.environ, "JWT_SECRET": TEST_SECRET, "DATABASE_URL": infra.database_url, "BASELINE_PORT": str(port)}
    process = Process("baseline", "bench.baseline", env, log_dir / "baseline.log")
    process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        await eventually(lambda: _healthy(url) if process.running else True, 30, 0.1, "the baseline to start")
        if not process.running:
            raise RuntimeError(f"the baseline exited:\n{_tail(process)}")
    except BaseException:
        process.stop()
        raise
    return process, url


@dataclass
class Floor:
    """The floor's two processes (bench.floor, bench.floor_worker) and the app's URL."""

    app: Process
    worker: Process
    url: str

    def stop(self) -> None:
        self.app.stop()
        self.worker.stop()


async def start_floor(infra: Infra, log_dir: Path) -> Floor:
    """The consumer first (waited for until it consumes its queue), then the app (waited for on /healthz)."""
    port = free_port()
    env = {**os.environ, **infra.env(), "JWT_SECRET": TEST_SECRET, "FLOOR_PORT": str(port)}
    floor = Floor(
        Process("floor", "bench.floor", env, log_dir / "floor.log"),
        Process("floor_worker", "bench.floor_worker", env, log_dir / "floor_worker.log"),
        f"http://127.0.0.1:{port}",
    )
    try:
        floor.worker.start()
        connection = await aio_pika.connect(infra.amqp_url)
        try:
            await eventually(
                lambda: _has_consumer(connection, FLOOR_QUEUE) if floor.worker.running else True,
                30,
                0.1,
                "the floor's consumer to consume",
            )
        finally:
            await connection.close()
        if not floor.worker.running:
            raise RuntimeError(f"the floor's consumer exited:\n{_tail(floor.worker)}")
        floor.app.start()
        await eventually(lambda: _healthy(floor.url) if floor.app.running else True, 30, 0.1, "the floor to start")
        if not floor.app.running:
            raise RuntimeError(f"the floor's app exited:\n{_tail(floor.app)}")
    except BaseException:
        floor.stop()
        raise
    return floor
