"""The stack under test: two gateways, two instances of each service, the Twilio sandbox.

Started with tests/support/stack.py (the processes the suite starts), not under
shared/tools/supervise.py: the fault schedule must know each process's pid to SIGKILL
it, decide when it comes back, and record both moments on its timeline; each process
keeps its own log file to read after the run. Restarting a killed process is the
harness's job here, as it is supervisord's in `make run` (`ChaosStack.supervise`).

Gateway 1 is the stack's `url` (PUBLIC_URL: the sandbox's status callbacks go there);
gateway 2 is the same program on another port.
"""

import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.support.infra import Infra
from tests.support.stack import Process, Stack, eventually, free_port, wait_http

SERVICES = ("leads", "bookings", "sms", "proposals", "documents")

# Realistic retry tiers (about a minute before a command is parked: longer than any outage of the
# schedule), answers that say 202 after 3 s, a provider timeout and a breaker that act within seconds.
CHAOS_ENV = {
    "RETRY_DELAYS": "0.5,1,2,4,8,15,30",
    "REPLY_TIMEOUT": "3",
    "PUBLISH_TIMEOUT": "2",
    "QUERY_TIMEOUT": "3",
    "TWILIO_TIMEOUT": "2",
    "SANDBOX_CALLBACK_DELAY": "0.05",
    "BREAKER_WINDOW": "6",
    "BREAKER_MIN_CALLS": "4",
    "BREAKER_WAIT_OPEN_SECONDS": "2",
    "BREAKER_HALF_OPEN_CALLS": "1",
    "WS_PING_INTERVAL": "5",
    "DB_POOL_SIZE": "5",
    "SMS_CAMPAIGN_RATE_PER_SECOND": "20",
    "SMS_CAMPAIGN_SWEEP_SECONDS": "5",  # a send lost between the dispatcher's commit and its publish: sooner again
}


@dataclass
class ChaosStack:
    infra: Infra
    log_dir: Path
    instances: int = 2
    stack: Stack = field(init=False)
    gateways: list[str] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    kills: dict[str, int] = field(default_factory=dict)  # SIGKILLs sent by the schedule, per process
    hold: dict[str, float] = field(default_factory=dict)  # killed: not started again before this moment
    exits: list[tuple[str, int | None]] = field(default_factory=list)  # died without being killed

    def __post_init__(self) -> None:
        env = {**self.infra.env(), **CHAOS_ENV, "BLOB_DIR": str(self.log_dir / "blobs")}
        self.stack = Stack(env, self.log_dir)

    @property
    def services(self) -> list[str]:
        return [n for n in self.stack.processes if n.split("-")[0] in SERVICES]

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{self.ports[g]}" for g in self.gateways]

    @property
    def sandbox_url(self) -> str:
        return self.stack.sandbox_url

    def process(self, name: str) -> Process:
        return self.stack.processes[name]

    async def start(self) -> None:
        try:
            self.stack.start("twilio_sandbox")
            await self.stack.wait_sandbox_ready()
            for service in SERVICES:
                for i in range(1, self.instances + 1):
                    self.stack.start(f"{service}-{i}", f"services.{service}")
            for name in self.services:
                await self.stack.wait_started(name, 60)
            for i in range(1, 3):
                name = f"gateway-{i}"
                self.ports[name] = self.stack.port if i == 1 else free_port()
                self.gateways.append(name)
                self.stack.start(name, "services.gateway", GATEWAY_PORT=str(self.ports[name]))
            for url in self.urls:
                await wait_http(url + "/readyz", 60, f"the gateway at {url}")
        except BaseException:
            self.stop()
            raise

    def kill(self, name: str, down: float) -> None:
        """SIGKILL; the supervisor starts it again `down` seconds later."""
        process = self.process(name)
        self.hold[name] = time.monotonic() + down
        if process.running:
            self.kills[name] = self.kills.get(name, 0) + 1
            process.stop(signal.SIGKILL)

    async def supervise(self, note: Callable[[str, str], None]) -> None:
        """What supervisord does in `make run`: start again whatever is not running (a killed process
        once its down time is over). A process that died without being killed is noted."""
        while True:
            for name, process in list(self.stack.processes.items()):
                if process.running:
                    continue
                held = self.hold.get(name)
                if held is not None and time.monotonic() < held:
                    continue
                if held is None:
                    code = process.popen.returncode if process.popen else None
                    self.exits.append((name, code))
                    note("exit", f"{name} exited by itself (code {code}); restarted")
                self.hold.pop(name, None)
                process.start()
                note("restart", f"{name} started again")
            await asyncio.sleep(0.2)

    async def wait_ready(self, gateways: list[str], timeout: float) -> None:
        urls = [f"http://127.0.0.1:{self.ports[g]}/readyz" for g in gateways]

        async def ready() -> bool:
            return all(await asyncio.gather(*(_answers(url) for url in urls)))

        await eventually(ready, timeout, 0.2, f"{', '.join(gateways)} to be ready")

    async def wait_all_ready(self, timeout: float = 90) -> None:
        await eventually(
            lambda: all(p.running for p in self.stack.processes.values()), timeout, 0.2, "every process to run"
        )
        await self.wait_ready(self.gateways, timeout)

    def stop(self) -> None:
        for name in reversed(list(self.stack.processes)):  # gateways first, the sandbox last
            self.stack.processes[name].stop()


async def _answers(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False
