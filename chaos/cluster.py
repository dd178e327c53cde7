"""`python -m chaos --cluster 3`: the run's broker is a RabbitMQ cluster on this machine (tests/support/cluster.py:
three nodes in network namespaces behind HAProxy, pause_minority), and its nodes fail too.

    Cluster().start() ─► the run's vhost on the cluster, its database on the local PostgreSQL (as without --cluster)
    ─► every process of the stack: AMQP_URL = HAProxy's ─► quorum queues and the event log: 3 members each? (once)
    ─► load ∥ the schedule's faults ∥ the cluster's faults, one at a time, each once in a seeded order, then more
       while one still fits before 85 % of the load:

      node SIGKILL (leader)  the node leading <service>.commands (asked of the cluster) SIGKILLed, started 5-10 s later
      partition              one node cut off from the other two for 15-20 s (pause_minority pauses it after ~10 s),
                             healed, and waited for: taking connections again and back in the cluster
      rolling restart        each node in turn: a graceful stop (once every quorum queue has quorum + 1 members
                             online), started again, back in the cluster

    Never two at once: one node down at most, the other two keep the majority. Everything the checker reads from the
    broker (the log, queue depths) is read from the cluster; the cluster is stopped at the end (its watchdog tears
    it down should the run be killed).
"""

import asyncio
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random
from typing import Any, NamedTuple

from shared import event_log
from tests.support.cluster import Cluster, ClusterError, Node

KILL, PARTITION, ROLLING = "node SIGKILL (leader)", "partition", "rolling restart"
FAULTS = (KILL, PARTITION, ROLLING)
# How long each takes on this project's machine (2 cores, under the load), with some margin: the plan's unit.
ESTIMATE = {KILL: 25.0, PARTITION: 40.0, ROLLING: 45.0}
LEADERS_OF = ("leads", "bookings", "sms", "proposals", "documents")  # <service>.commands: whose leader is killed
FAULTS_END = 0.85  # of the load: no fault beyond the first round starts if it would not end by then
CTL_ERRORS = (ClusterError, subprocess.TimeoutExpired, OSError, ValueError)


@dataclass(frozen=True)
class Timings:
    down: tuple[float, float] = (5.0, 10.0)  # a killed node stays down
    hold: tuple[float, float] = (15.0, 20.0)  # a partition lasts (pause_minority acts within net_ticktime, ~10 s)
    pause_wait: float = 15.0  # more, should the cut-off node not have paused by the end of the hold
    gap: tuple[float, float] = (3.0, 8.0)  # between two cluster faults
    start: tuple[float, float] = (0.04, 0.07)  # the first one, as a share of the load


class Step(NamedTuple):
    at: float  # seconds from the start of the load, at the earliest
    fault: str
    required: bool  # the first round: done even if the load ends meanwhile


def possible(cluster: Cluster) -> tuple[str, ...]:
    """The faults this cluster can have: no partition for nodes on loopback (no namespace to cut off)."""
    return FAULTS if cluster.can_partition else tuple(f for f in FAULTS if f != PARTITION)


def plan(rng: Random, span: float, timings: Timings = Timings(), faults: tuple[str, ...] = FAULTS) -> list[Step]:
    """Each cluster fault once, in a seeded order, one after the other (each planned to start once the one before
    it should be over, by its estimate, and a gap); then more, drawn, while one still fits before 85 % of the load.
    The runner waits for each to end before the next: they never overlap, whatever they really take."""
    at = rng.uniform(*timings.start) * span
    steps: list[Step] = []
    for fault in rng.sample(faults, len(faults)):
        steps.append(Step(at, fault, True))
        at += ESTIMATE[fault] + rng.uniform(*timings.gap)
    while True:
        fault = rng.choice(faults)
        if at + ESTIMATE[fault] > FAULTS_END * span:
            return steps
        steps.append(Step(at, fault, False))
        at += ESTIMATE[fault] + rng.uniform(*timings.gap)


@dataclass
class ClusterFaults:
    """The cluster's faults, run one at a time (`run`), with what each did (`done`) and what went wrong (`errors`)."""

    cluster: Cluster
    vhost: str
    rng: Random
    note: Callable[[str, str], None]
    timings: Timings = Timings()
    counts: dict[str, int] = field(default_factory=dict)
    done: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    active: str | None = None  # the fault under way (never two)

    async def run(self, steps: list[Step], t0: float, span: float) -> None:
        last_end: float | None = None
        for step in steps:
            wait = t0 + step.at - time.monotonic()
            if last_end is not None:
                wait = max(wait, last_end + self.timings.gap[0] - time.monotonic())
            if not step.required and time.monotonic() + max(wait, 0) + ESTIMATE[step.fault] > t0 + FAULTS_END * span:
                self.note("cluster", f"{step.fault}: no more time for it before the faults end")
                continue
            if wait > 0:
                await asyncio.sleep(wait)
            await self.exercise(step.fault, t0)
            last_end = time.monotonic()

    async def exercise(self, fault: str, t0: float) -> None:
        assert self.active is None, f"{fault} while {self.active} is under way"
        self.active, started = fault, time.monotonic()
        action = {KILL: self.kill_leader, PARTITION: self.partition, ROLLING: self.rolling_restart}[fault]
        try:
            detail = await action()
            self.counts[fault] = self.counts.get(fault, 0) + 1
            self.done.append(
                {"fault": fault, "at": round(started - t0, 1), "took": round(time.monotonic() - started, 1), **detail}
            )
        except Exception as exc:  # noqa: BLE001 - any failure of the cluster's tools: noted, the cluster put right
            self.errors.append(f"{fault}: {type(exc).__name__}: {exc}")
            self.note("cluster", f"{fault} failed: {type(exc).__name__}: {exc}; every node started and healed")
            try:
                await asyncio.to_thread(self.restore)
            except Exception as again:  # noqa: BLE001 - said, and the run fails on `errors`
                self.errors.append(f"restoring the cluster after {fault}: {type(again).__name__}: {again}")
                self.note("cluster", f"the cluster could not be restored: {again}")
        finally:
            self.active = None

    def restore(self) -> None:
        """Every node healed, running, taking connections and in the cluster."""
        for node in self.cluster.nodes:
            self.cluster.heal(node)
            if not self.cluster.running(node):
                self.cluster.start_node(node)
        for node in self.cluster.nodes:
            self.cluster.wait_up(node)
        self.cluster.wait_clustered()

    async def _back(self, node: Node) -> None:
        await asyncio.to_thread(self.cluster.wait_up, node)
        await asyncio.to_thread(self.cluster.wait_clustered)

    async def kill_leader(self) -> dict[str, Any]:
        queue = f"{self.rng.choice(LEADERS_OF)}.commands"
        down = self.rng.uniform(*self.timings.down)
        rows = await asyncio.to_thread(self.cluster.queues, self.vhost)
        leader = next((str(q["leader"]) for q in rows if q["name"] == queue), "")
        node = next((n for n in self.cluster.nodes if n.name == leader), None)
        if node is None:  # (no leader known: the queue missing, or an election under way)
            node = self.rng.choice(self.cluster.nodes)
            self.note("cluster", f"{queue}: no leader named ({leader!r}); {node.name} is killed instead")
        led = sorted(q["name"] for q in rows if q["type"] in ("quorum", "stream") and q["leader"] == leader)
        self.note(
            "cluster", f"SIGKILL {node.name}, leader of {queue} and {len(led) - 1} more queues; back in {down:.1f} s"
        )
        killed = time.monotonic()
        await asyncio.to_thread(self.cluster.kill, node)
        await asyncio.sleep(down)
        await asyncio.to_thread(self.cluster.start_node, node)
        await self._back(node)
        back = time.monotonic() - killed
        self.note("cluster", f"{node.name} started again, back in the cluster {back:.1f} s after its SIGKILL")
        return {"node": node.name, "queue": queue, "led": len(led), "down": round(down, 1), "back": round(back, 1)}

    async def partition(self) -> dict[str, Any]:
        node = self.rng.choice(self.cluster.nodes)
        hold = self.rng.uniform(*self.timings.hold)
        self.note("cluster", f"partition: {node.name} cut off from the other nodes for {hold:.1f} s")
        cut = time.monotonic()
        paused: float | None = None
        await asyncio.to_thread(self.cluster.partition, node)
        try:
            while (held := time.monotonic() - cut) < hold or (paused is None and held < hold + self.timings.pause_wait):
                if paused is None and not await asyncio.to_thread(self.cluster.listening, node):
                    paused = time.monotonic() - cut
                    self.note("cluster", f"{node.name} paused itself (pause_minority) {paused:.1f} s after the cut")
                await asyncio.sleep(0.5)
        finally:
            await asyncio.to_thread(self.cluster.heal, node)
        healed = time.monotonic()
        self.note(
            "cluster",
            f"partition healed after {healed - cut:.1f} s" + ("" if paused else f"; {node.name} never paused"),
        )
        await self._back(node)
        back = time.monotonic() - healed
        self.note("cluster", f"{node.name} back in the cluster {back:.1f} s after the heal")
        return {
            "node": node.name,
            "held": round(healed - cut, 1),
            "paused after": None if paused is None else round(paused, 1),
            "back": round(back, 1),
        }

    async def rolling_restart(self) -> dict[str, Any]:
        nodes = self.rng.sample(self.cluster.nodes, len(self.cluster.nodes))
        self.note("cluster", "rolling restart: " + ", ".join(n.name for n in nodes))
        each: list[float] = []
        for node in nodes:
            started = time.monotonic()
            await asyncio.to_thread(self.cluster.stop_node, node)
            self.note("cluster", f"{node.name} stopped (graceful, {time.monotonic() - started:.1f} s)")
            await asyncio.to_thread(self.cluster.start_node, node)
            await self._back(node)
            each.append(round(time.monotonic() - started, 1))
            self.note("cluster", f"{node.name} started again, back in the cluster ({each[-1]:.1f} s)")
        return {"nodes": [n.name for n in nodes], "each": each}


def members(cluster: Cluster, vhost: str) -> dict[str, Any]:
    """Each quorum queue and stream of `vhost` with its members, and those with fewer than the cluster's nodes."""
    rows = cluster.queues(vhost)
    replicated = {str(q["name"]): (str(q["type"]), list(q["members"] or [])) for q in rows if q["type"] != "classic"}
    nodes = {n.name for n in cluster.nodes}
    short = {name: sorted(m) for name, (_, m) in replicated.items() if set(m) != nodes}
    return {
        "nodes": len(nodes),
        "quorum": sum(1 for kind, _ in replicated.values() if kind == "quorum"),
        "streams": sorted(name for name, (kind, _) in replicated.items() if kind == "stream"),
        "classic": sorted(
            str(q["name"]) for q in rows if q["type"] == "classic" and not str(q["name"]).startswith("amq.")
        ),
        "short": short,
    }


def membership_failures(found: dict[str, Any]) -> list[str]:
    if "error" in found:
        return [f"the queues' members could not be read: {found['error']}"]
    failures = [f"{name} has {len(m)} members, not {found['nodes']}" for name, m in found["short"].items()]
    if event_log.LOG not in found["streams"]:
        failures.append(f"no stream {event_log.LOG} in the vhost")
    if not found["quorum"]:
        failures.append("no quorum queue in the vhost")
    return failures


def depths(cluster: Cluster, vhost: str) -> list[dict[str, Any]]:
    """name and messages (ready + unacknowledged) of each queue of `vhost`, asked of a running node."""
    for attempt in range(3):
        try:
            output = cluster.ctl(
                cluster.any_running(),
                "rabbitmqctl",
                "list_queues",
                "-p",
                vhost,
                "name",
                "messages",
                "--formatter",
                "json",
            )
            return list(json.loads(output))
        except CTL_ERRORS:
            if attempt == 2:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")
