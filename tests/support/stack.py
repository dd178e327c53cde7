"""Start the real processes (gateway, services) as subprocesses, and stop them.

Used by the end-to-end tests and by `make bench`. Each process writes its JSON
log lines to its own file, so tests can wait on what a service logged.
"""

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
TEST_SECRET = "test-secret-" + "x" * 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def eventually(
    check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Wait until `check()` (sync or async) returns something truthy; return it. Fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


@dataclass
class Process:
    name: str
    module: str
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen | None = None
    log_offset: int = 0  # lines before this byte were written by an earlier process of the same name

    def start(self) -> None:
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.popen = subprocess.Popen(
                [sys.executable, "-m", self.module],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        popen = self.popen
        if popen is None or not self.running:
            return popen.returncode if popen else None
        popen.send_signal(sig)
        try:
            return popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            return popen.wait(5)

    def log_lines(self) -> list[dict]:
        lines = []
        with self.log_path.open("rb") as log:
            log.seek(self.log_offset)
            text = log.read().decode(errors="replace")
        for raw in text.splitlines():
            if raw.startswith("{"):
                with contextlib.suppress(ValueError):
                    lines.append(json.loads(raw))
        return lines

    def logged(self, event: str, **fields: object) -> list[dict]:
        return [
            line
            for line in self.log_lines()
            if line.get("event") == event and all(line.get(k) == v for k, v in fields.items())
        ]


@dataclass
class Stack:
    base_env: dict[str, str]
    log_dir: Path
    port: int = field(default_factory=free_port)
    sandbox_port: int = field(default_factory=free_port)
    processes: dict[str, Process] = field(default_factory=dict)
    metrics_ports: dict[str, int] = field(default_factory=dict)  # a service's /metrics, where it serves one

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sandbox_url(self) -> str:
        """The local fake of Twilio's API that the SMS service talks to."""
        return f"http://127.0.0.1:{self.sandbox_port}"

    def env(self, **extra: str) -> dict[str, str]:
        wiring = {
            "APP_ENV": "development",
            "JWT_SECRET": TEST_SECRET,
            "GATEWAY_PORT": str(self.port),
            "LOG_JSON": "true",
            "PUBLIC_URL": self.url,
            "TWILIO_BASE_URL": self.sandbox_url,
            "SANDBOX_PORT": str(self.sandbox_port),
            "SANDBOX_INBOUND_URL": f"{self.url}/webhooks/twilio/inbound",
        }
        return {**os.environ, **wiring, **self.base_env, **extra}

    def start(self, name: str, module: str | None = None, **extra_env: str) -> Process:
        """Start `name`; one still running under that name is stopped first, so a test that failed before its
        fault process died (or forgot it) does not leave a second consumer behind for the tests after it."""
        if (previous := self.processes.get(name)) is not None:
            previous.stop()
        if name in self.metrics_ports:  # a service restarted by a test serves its /metrics where it did
            extra_env.setdefault("METRICS_PORT", str(self.metrics_ports[name]))
        process = Process(name, module or f"services.{name}", self.env(**extra_env), self.log_dir / f"{name}.log")
        process.start()
        self.processes[name] = process
        return process

    async def wait_started(self, name: str, timeout: float = 30) -> None:
        process = self.processes[name]
        await eventually(
            lambda: process.logged("service.started") or not process.running, timeout, what=f"{name} to start"
        )
        assert process.running, f"{name} exited: {process.log_path.read_text()[-2000:]}"

    async def wait_gateway_ready(self, timeout: float = 30) -> None:
        await wait_http(f"{self.url}/readyz", timeout, "the gateway to be ready")

    async def wait_sandbox_ready(self, timeout: float = 30) -> None:
        await wait_http(f"{self.sandbox_url}/_sandbox/messages", timeout, "the Twilio sandbox to answer")

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.stop()


async def wait_http(url: str, timeout: float, what: str) -> None:
    async with aiohttp.ClientSession() as http:

        async def ok() -> bool:
            try:
                async with http.get(url) as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(ok, timeout, 0.1, what)
