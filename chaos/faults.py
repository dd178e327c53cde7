"""The fault schedule: what goes wrong, when, and how it is put right (always, in `finally`).

    0 ─────────────── load (--seconds) ──────────────────────────────────────────► end
      SIGKILL each service instance and each gateway once, at random moments (seeded); back after 0.5-3 s
      (a gateway only while the other one is ready: its clients fail over)
      the Twilio sandbox failing for a stretch: 500, 429, timeouts (slower than TWILIO_TIMEOUT), slow
      RabbitMQ stopped (`rabbitmqctl stop_app`) for a few seconds, then started      (--no-broker-restart)
      PostgreSQL stopped for a few seconds, then started (`pg_ctlcluster`)           (--no-db-restart)
      the raw websocket screens dropped and resumed every few seconds
    every fault ends by 85 % of the load; the broker and the database are never down at the same time.

With --cluster, RabbitMQ's stop is replaced by the cluster's faults (chaos/cluster.py): a node leading a command
queue SIGKILLed, a node cut off by a partition, a rolling restart; one at a time, each at least once.

The broker and the database are the machine's own: those faults are skipped (and said so) unless they
are local and can be restarted here. Whatever is stopped is started again in `finally`, and by an atexit
hook should the run end some other way.
"""

import asyncio
import atexit
import functools
import os
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from random import Random
from urllib.parse import urlsplit

import aiohttp

from chaos import cluster as cluster_faults
from chaos.screens import Screen
from chaos.stack import ChaosStack

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Timeline:
    t0: float = field(default_factory=time.monotonic)
    lines: list[tuple[float, str, str]] = field(default_factory=list)

    def note(self, what: str, detail: str) -> None:
        self.lines.append((time.monotonic() - self.t0, what, detail))
        print(f"  {time.monotonic() - self.t0:7.1f}s  {what:<10} {detail}", flush=True)


def _run(*command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


class Infrastructure:
    """Stopping and starting the machine's broker and database, with the restores registered at exit."""

    def __init__(self, amqp_url: str, database_url: str):
        self.amqp_url, self.database_url = amqp_url, database_url
        self.broker_down = self.db_down = False
        atexit.register(self.restore)

    def broker_refusal(self) -> str | None:
        if urlsplit(self.amqp_url).hostname not in LOOPBACK:
            return "the broker is not on this machine"
        if not shutil.which("rabbitmqctl"):
            return "rabbitmqctl is not installed"
        if _run("rabbitmqctl", "-q", "status").returncode != 0:
            return "rabbitmqctl status failed: not a local node this run can restart"
        return None

    def db_refusal(self) -> str | None:
        if urlsplit(self.database_url).hostname not in LOOPBACK:
            return "the database is not on this machine"
        if not shutil.which("pg_ctlcluster") or not self._cluster():
            return "pg_ctlcluster or /etc/postgresql/<version>/main is missing"
        return None

    @staticmethod
    def _cluster() -> str | None:
        versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
        return versions[-1] if versions else None

    def _pg(self, action: str) -> subprocess.CompletedProcess[str]:
        return _run("pg_ctlcluster", "--skip-systemctl-redirect", str(self._cluster()), "main", action)

    def stop_broker(self) -> None:
        self.broker_down = True
        _run("rabbitmqctl", "-q", "stop_app", timeout=120).check_returncode()

    def start_broker(self) -> None:
        _run("rabbitmqctl", "-q", "start_app", timeout=120).check_returncode()
        self.broker_down = False

    def stop_db(self) -> None:
        self.db_down = True
        self._pg("stop").check_returncode()

    def start_db(self) -> None:
        result = self._pg("start")
        if result.returncode != 0 and "already running" not in result.stderr + result.stdout:
            result.check_returncode()
        self.db_down = False

    def restore(self) -> None:
        if self.broker_down:
            self.start_broker()
        if self.db_down:
            self.start_db()


@dataclass
class Options:
    seconds: float
    broker: bool = True
    db: bool = True
    kills: bool = True
    sandbox: bool = True
    ws_drops: bool = True
    outage_seconds: float = 4.0


class Schedule:
    def __init__(
        self,
        stack: ChaosStack,
        infra: Infrastructure,
        screens: list[Screen],
        rng: Random,
        options: Options,
        timeline: Timeline,
        cluster: cluster_faults.ClusterFaults | None = None,
    ):
        self.stack, self.infra, self.screens, self.rng = stack, infra, screens, rng
        self.options, self.timeline, self.cluster = options, timeline, cluster
        self.exercised: dict[str, int] = {}
        self.skipped: dict[str, str] = {}

    def plan(self) -> list[tuple[float, str, Callable[[], Awaitable[None]]]]:
        o, rng, span = self.options, self.rng, self.options.seconds
        at: list[tuple[float, str, Callable[[], Awaitable[None]]]] = []
        if o.kills:
            for name in [*self.stack.services, *self.stack.gateways]:
                at.append((rng.uniform(0.05, 0.8) * span, f"kill {name}", functools.partial(self.kill, name)))
        if o.sandbox:
            at.append((rng.uniform(0.1, 0.25) * span, "sandbox", self.sandbox_stretch))
        outages = [(o.db, "database", 0.6, self.db_outage, self.infra.db_refusal)]
        if self.cluster is None:  # (with a cluster, its faults instead: below)
            outages.insert(0, (o.broker, "broker", 0.35, self.broker_outage, self.infra.broker_refusal))
        for enabled, name, moment, fault, refusal in outages:
            if not enabled:
                self.skipped[name] = "switched off for this run"
            elif (why := refusal()) is not None:
                self.skipped[name] = why
            else:
                at.append((moment * span, name, fault))
        if self.cluster is not None and not o.broker:
            self.skipped["cluster"] = "switched off for this run"
        elif self.cluster is not None:
            possible = cluster_faults.possible(self.cluster.cluster)
            if cluster_faults.PARTITION not in possible:
                self.skipped[cluster_faults.PARTITION] = "the cluster's nodes are on loopback: no namespace to cut off"
            steps = cluster_faults.plan(rng, span, self.cluster.timings, possible)
            run_cluster = functools.partial(self.cluster.run, steps, self.timeline.t0, span)
            at.append((0.0, "cluster", run_cluster))
        if o.ws_drops and self.screens:
            at.append((0.0, "ws drops", self.drop_screens))
        return sorted(at, key=lambda item: item[0])

    async def run(self) -> None:
        async def later(delay: float, fault: Callable[[], Awaitable[None]]) -> None:
            await asyncio.sleep(delay)
            await fault()

        await asyncio.gather(*(later(delay, fault) for delay, _, fault in self.plan()))

    def _count(self, what: str) -> None:
        self.exercised[what] = self.exercised.get(what, 0) + 1

    async def kill(self, name: str) -> None:
        if name in self.stack.gateways:  # one gateway at a time: the clients fail over to the other one
            others = [g for g in self.stack.gateways if g != name]
            try:
                await self.stack.wait_ready(others, 60)
            except AssertionError as exc:
                self.timeline.note("warning", f"{exc}; {name} is killed all the same")
        down = self.rng.uniform(0.5, 3.0)
        self.stack.kill(name, down)
        self._count("gateway SIGKILL" if name.startswith("gateway") else "service SIGKILL")
        self.timeline.note("SIGKILL", f"{name} (back in {down:.1f} s)")

    async def sandbox_stretch(self) -> None:
        """Five, then four, then five seconds of failures; the sandbox behaves again in `finally`."""
        stretch = [
            ({"mode": "error", "status": 500}, 5),
            ({"mode": "error", "status": 429}, 4),
            ({"mode": "slow", "delay": 3}, 5),
            ({"mode": "error", "status": 503}, 3),
            ({"mode": "slow", "delay": 0.8}, 4),
        ]
        async with aiohttp.ClientSession() as http:
            try:
                for behaviour, seconds in stretch:
                    await self._behave(http, behaviour)
                    self.timeline.note("sandbox", f"{behaviour} for {seconds} s")
                    await asyncio.sleep(seconds)
                self._count("sandbox failing")
            finally:
                await self._behave(http, {"mode": "ok"})
                self.timeline.note("sandbox", "behaves again")

    async def _behave(self, http: aiohttp.ClientSession, behaviour: dict[str, object]) -> None:
        async with http.post(self.stack.sandbox_url + "/_sandbox/behaviour", json=behaviour) as response:
            response.raise_for_status()

    async def broker_outage(self) -> None:
        try:
            self.timeline.note("broker", "rabbitmqctl stop_app")
            await asyncio.to_thread(self.infra.stop_broker)
            await asyncio.sleep(self.options.outage_seconds)
        finally:
            await asyncio.to_thread(self.infra.start_broker)
            self.timeline.note("broker", "rabbitmqctl start_app: running again")
        self._count("broker stopped")

    async def db_outage(self) -> None:
        try:
            self.timeline.note("database", "pg_ctlcluster stop")
            await asyncio.to_thread(self.infra.stop_db)
            await asyncio.sleep(self.options.outage_seconds)
        finally:
            await asyncio.to_thread(self.infra.start_db)
            self.timeline.note("database", "pg_ctlcluster start: running again")
        self._count("database stopped and started")

    async def drop_screens(self) -> None:
        """Each raw screen dropped every 4-9 s until the faults end; it resumes on the other gateway."""
        end = self.timeline.t0 + 0.85 * self.options.seconds
        while time.monotonic() < end:
            await asyncio.sleep(self.rng.uniform(4, 9))
            screen = self.rng.choice(self.screens)
            screen.drop()
            self._count("websocket dropped")
        self.timeline.note("ws drops", f"{self.exercised.get('websocket dropped', 0)} drops done")
