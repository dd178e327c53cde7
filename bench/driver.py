"""The load driver and the websocket listener, shared by the pipeline and the baseline.

`drive` sends pre-encoded JSON bodies with a fixed number of workers through one
ClientSession and records, per request, the send and answer times
(time.perf_counter, so the websocket arrival times below are on the same clock).
"""

import asyncio
import json
import time
from dataclasses import dataclass, field

import aiohttp

Job = tuple[str, bytes]  # (key, JSON body)


@dataclass
class Sample:
    key: str
    sent: float
    done: float
    status: int | str  # HTTP status, or the exception's name when there was no answer
    body: bytes


def client(concurrency: int, timeout: float | None) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency), timeout=aiohttp.ClientTimeout(total=timeout)
    )


def update_jobs(lead_ids: list[str], status: str = "contacted") -> list[Job]:
    return [(i, json.dumps({"leadId": i, "status": status}).encode()) for i in lead_ids]


async def _one(http: aiohttp.ClientSession, url: str, headers: dict[str, str], job: Job) -> Sample:
    key, body = job
    sent = time.perf_counter()
    status: int | str
    try:
        async with http.post(url, data=body, headers=headers) as response:
            data, status = await response.read(), response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        data, status = b"", type(exc).__name__
    return Sample(key, sent, time.perf_counter(), status, data)


async def drive(http: aiohttp.ClientSession, url: str, token: str, jobs: list[Job], concurrency: int) -> list[Sample]:
    """POST every job once, `concurrency` at a time."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    pending = iter(jobs)
    samples: list[Sample] = []

    async def worker() -> None:
        for job in pending:
            samples.append(await _one(http, url, headers, job))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples


@dataclass
class Listener:
    """One websocket on the gateway; records when the first event of each lead (or other `key` of
    the event's data, e.g. appointmentId) arrived."""

    key: str = "leadId"
    arrivals: dict[str, float] = field(default_factory=dict)
    frames: int = 0
    closed: str | None = None  # set when the gateway closed the websocket
    _closing: bool = False
    _ws: aiohttp.ClientWebSocketResponse | None = None
    _task: asyncio.Task[None] | None = None

    async def open(self, http: aiohttp.ClientSession, url: str, token: str, topics: list[str]) -> None:
        self._ws = await http.ws_connect(f"{url}/ws")
        await self._ws.send_json({"type": "hello", "token": token, "topics": topics})
        welcome = await self._ws.receive_json(timeout=10)
        if welcome.get("type") != "welcome":
            raise RuntimeError(f"the websocket answered the hello with {welcome!r}")
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            now = time.perf_counter()
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            if frame.get("type") == "event":
                self.frames += 1
                self.arrivals.setdefault(str((frame.get("data") or {}).get(self.key)), now)
        if not self._closing:
            self.closed = f"closed by the gateway, code {self._ws.close_code}"

    async def wait_for(self, keys: list[str], timeout: float) -> int:
        """Wait until an event arrived for every key (at most `timeout` s); return how many are missing."""
        deadline = time.monotonic() + timeout
        while True:
            missing = sum(1 for k in keys if k not in self.arrivals)
            if not missing or self.closed or time.monotonic() > deadline:
                return missing
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
