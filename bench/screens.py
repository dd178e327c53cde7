"""A resumable screen as a real client keeps one (`bench.resume`, `bench.herd`).

It keeps (epoch, position) of the last event it applied and resumes from there. After a close before its
welcome (1013 "too many replays ...": the gateway caps replays per user and per gateway), a connection
that fails, or a socket closed before it is current, it comes back after the Python client's backoff
(`crm_client.live`, RetryPolicy's defaults): exponential with full jitter, the n-th failure in a row waits
a time drawn at random below min(BACKOFF_MAX, BACKOFF * 2**n): below 0.5 s, 1 s, 2 s, ... 8 s; a welcome
starts the count again.

Every event frame is recorded, (id, position, arrival time), and none is deduplicated, so that the
figures count what a client would get twice.
"""

import asyncio
import json
import random
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import aiohttp

HELLO_TIMEOUT = 20.0
BACKOFF = 0.25
BACKOFF_MAX = 8.0
TRY_AGAIN_LATER = 1013


@dataclass(frozen=True)
class Arrival:
    id: str
    position: int
    at: float  # time.perf_counter() when the frame was read


class Refused(Exception):
    """The socket closed before its welcome (`code`: 1013 and its kin), or could not be opened (`code` None)."""

    def __init__(self, code: int | None, why: str):
        super().__init__(f"code {code}: {why}")
        self.code = code


@dataclass(eq=False)
class Screen:
    url: str  # the gateway's http URL
    token: str
    topics: list[str]
    epoch: str | None = None
    position: int | None = None  # the last position applied (the welcome's, until an event came)
    arrivals: list[Arrival] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    welcomes: list[dict[str, Any]] = field(default_factory=list)
    hello_at: float = 0.0  # the last hello sent, and its welcome read (time.perf_counter())
    welcomed_at: float = 0.0
    refused: int = 0  # closes 1013 before a welcome
    reconnects: int = 0  # other comebacks: a connection that failed, a socket closed before it was current
    _ws: aiohttp.ClientWebSocketResponse | None = None
    _reading: asyncio.Task[None] | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)  # set at each event frame, and at the close

    @property
    def open(self) -> bool:
        return self._reading is not None and not self._reading.done()

    async def hello(self, http: aiohttp.ClientSession, resume: bool = True) -> dict[str, Any]:
        """Connect and say hello, from (epoch, position) when `resume` and known; the welcome, or Refused."""
        hello: dict[str, Any] = {"type": "hello", "token": self.token, "topics": self.topics}
        if resume and self.epoch is not None and self.position is not None:
            hello["resume"] = {"epoch": self.epoch, "position": self.position}
        try:
            ws = await http.ws_connect(f"{self.url}/ws")
        except (aiohttp.ClientError, OSError) as exc:
            raise Refused(None, repr(exc)) from exc
        try:
            self.hello_at = time.perf_counter()
            await ws.send_json(hello)
            message = await ws.receive(timeout=HELLO_TIMEOUT)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await ws.close()
            raise Refused(ws.close_code, repr(exc)) from exc
        if message.type != aiohttp.WSMsgType.TEXT:
            await ws.close()
            raise Refused(ws.close_code, str(message.extra or message.type))
        welcome = json.loads(message.data)
        if welcome.get("type") != "welcome":
            await ws.close()
            raise RuntimeError(f"the websocket answered the hello with {welcome!r}")
        self.welcomed_at = time.perf_counter()
        self.welcomes.append(welcome)
        self.epoch, self.position = welcome["epoch"], welcome["position"]
        self._ws, self._reading = ws, asyncio.create_task(self._read(ws))
        return welcome

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                frame = json.loads(message.data)
                if frame.get("type") == "event":
                    self.arrivals.append(Arrival(frame["id"], frame["position"], time.perf_counter()))
                    self.ids.add(frame["id"])
                    self.epoch, self.position = frame["epoch"], frame["position"]
                    self._arrived.set()
        finally:
            self._arrived.set()  # (closed: a waiter sees it)

    async def wait_for(self, ids: set[str], deadline: float) -> bool:
        """Until every one of `ids` arrived (True), the socket closed, or time.monotonic() passed `deadline`."""
        while not ids <= self.ids:
            if not self.open or time.monotonic() >= deadline:
                return False
            self._arrived.clear()
            with suppress(TimeoutError):
                async with asyncio.timeout(deadline - time.monotonic()):
                    await self._arrived.wait()
        return True

    async def catch_up(self, http: aiohttp.ClientSession, ids: set[str], deadline: float) -> bool:
        """Resume (again, backing off as the module says) until every one of `ids` arrived, or `deadline`."""
        failures = 0
        while not ids <= self.ids and time.monotonic() < deadline:
            try:
                if not self.open:
                    await self.hello(http)
                    failures = 0
                if await self.wait_for(ids, deadline) or self.open:
                    break  # current, or out of time
                self.reconnects += 1  # closed before it was current
            except Refused as refusal:
                if refusal.code == TRY_AGAIN_LATER:
                    self.refused += 1
                else:
                    self.reconnects += 1
            failures += 1
            wait = random.uniform(0, min(BACKOFF_MAX, BACKOFF * 2**failures))
            await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
        return ids <= self.ids

    async def closed(self, timeout: float) -> bool:
        """Until the gateway closed the socket (True), or `timeout` s passed."""
        if self._reading is not None:
            await asyncio.wait([self._reading], timeout=timeout)
        return not self.open

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reading is not None:
            await asyncio.gather(self._reading, return_exceptions=True)
