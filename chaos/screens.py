"""Screens watching the organisation's events while the faults run.

- `Follower`: crm_client's `subscribe` on one gateway (it resumes by itself when that gateway is killed
  and comes back, and dedupes what it yields by id and position).
- `Screen`: a raw websocket that the schedule drops on purpose; it resumes from the last position it
  read, each time on the other gateway. It keeps every frame as it came, so a doubled event is seen.

Each records the events it got; the checker compares them with the log.
"""

import asyncio
import json
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from crm_client.http import RetryPolicy
from crm_client.live import Reload, subscribe


@dataclass
class Follower:
    name: str
    url: str
    token: str
    ids: list[str] = field(default_factory=list)
    reloads: int = 0
    error: str = ""
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for item in subscribe(
                self.url, self.token, ["#"], None, 5.0, RetryPolicy(backoff_max=2.0), give_up_after=300
            ):
                if isinstance(item, Reload):
                    self.reloads += 1
                else:
                    self.ids.append(item.id)
        except Exception as exc:  # noqa: BLE001 - reported in the table
            self.error = f"{type(exc).__name__}: {exc}"

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with suppress(asyncio.CancelledError):
                await self.task


@dataclass
class Screen:
    name: str
    urls: list[str]
    token: str
    ids: list[str] = field(default_factory=list)
    reloads: int = 0  # welcomes with recovered: false after the first
    resumes: int = 0
    epoch: str | None = None
    position: int | None = None
    task: asyncio.Task[None] | None = None
    _drop: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    def drop(self) -> None:
        self._drop.set()

    async def _run(self) -> None:
        turn = 0
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    await self._connection(http, self.urls[turn % len(self.urls)])
                except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
                    await asyncio.sleep(0.3)
                turn += 1

    async def _connection(self, http: aiohttp.ClientSession, url: str) -> None:
        hello: dict[str, Any] = {"type": "hello", "token": self.token, "topics": ["#"]}
        if self.epoch is not None and self.position is not None:
            hello["resume"] = {"epoch": self.epoch, "position": self.position}
        async with http.ws_connect(url.replace("http", "ws", 1) + "/ws", heartbeat=5) as ws:
            await ws.send_json(hello)
            first = await ws.receive(timeout=15)
            if first.type != aiohttp.WSMsgType.TEXT:  # closed before its welcome (1011 or 1013: resume later)
                return
            welcome = json.loads(first.data)
            if welcome.get("type") != "welcome":
                return
            if "resume" in hello:
                self.resumes += 1
                self.reloads += not welcome.get("recovered")
            self.epoch, self.position = welcome["epoch"], welcome["position"]
            self._drop.clear()
            reading = asyncio.create_task(self._read(ws))
            dropped = asyncio.create_task(self._drop.wait())
            await asyncio.wait({reading, dropped}, return_when=asyncio.FIRST_COMPLETED)
            for task in (reading, dropped):
                task.cancel()
                with suppress(asyncio.CancelledError, aiohttp.ClientError):
                    await task

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                return
            frame = json.loads(message.data)
            if frame.get("type") == "event":
                self.ids.append(frame["id"])
                self.epoch, self.position = frame["epoch"], frame["position"]

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with suppress(asyncio.CancelledError):
                await self.task
