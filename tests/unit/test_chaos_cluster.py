"""`python -m chaos --cluster 3`: the cluster's faults are planned so that each happens in a default run, one after
the other, and run so that never two overlap (one node down at most); a fault that fails is said, the cluster put
right, and the faults after it still happen. Shown with a cluster made here (no RabbitMQ)."""

from dataclasses import dataclass, field
from itertools import pairwise
from random import Random
from typing import Any

import pytest

from chaos import cluster as chaos_cluster
from chaos.cluster import (
    ESTIMATE,
    FAULTS,
    FAULTS_END,
    KILL,
    PARTITION,
    ROLLING,
    ClusterFaults,
    Step,
    Timings,
    plan,
    possible,
)
from chaos.faults import Options, Schedule, Timeline

QUICK = Timings(down=(0.01, 0.02), hold=(0.05, 0.06), pause_wait=0.2, gap=(0.01, 0.02), start=(0.0, 0.0))


@pytest.mark.parametrize("seed", range(50))
def test_a_default_run_plans_each_cluster_fault_once_one_after_the_other_before_the_faults_end(seed: int) -> None:
    span = 180.0
    steps = plan(Random(seed), span)
    first = steps[: len(FAULTS)]
    assert sorted(s.fault for s in first) == sorted(FAULTS) and all(s.required for s in first)
    assert not any(s.required for s in steps[len(FAULTS) :])
    for before, after in pairwise(steps):
        assert after.at >= before.at + ESTIMATE[before.fault] + Timings().gap[0]
    assert steps[-1].at + ESTIMATE[steps[-1].fault] <= FAULTS_END * span


def test_the_estimates_leave_room_for_a_slow_rolling_restart() -> None:
    assert ESTIMATE[ROLLING] >= 40 and ESTIMATE[PARTITION] >= Timings().hold[1] + 15 and ESTIMATE[KILL] >= 20


def test_a_longer_run_repeats_them_and_each_fits_before_the_faults_end() -> None:
    span = 900.0
    steps = plan(Random(3), span)
    assert len(steps) > len(FAULTS)
    assert all(s.at + ESTIMATE[s.fault] <= FAULTS_END * span for s in steps)


@dataclass
class FakeNode:
    index: int

    @property
    def name(self) -> str:
        return f"rabbit@10.0.0.{self.index}"

    @property
    def host(self) -> str:
        return f"10.0.0.{self.index}"


@dataclass
class FakeCluster:
    """Three nodes; what each call does to them, and how many are away (down, stopped or cut off) at worst."""

    nodes: list[FakeNode] = field(default_factory=lambda: [FakeNode(i) for i in (1, 2, 3)])
    down: set[str] = field(default_factory=set)
    cut: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    worst: int = 0
    fail: str = ""  # a call that raises once
    can_partition: bool = True  # (False: nodes on loopback)

    def _away(self) -> None:
        self.worst = max(self.worst, len(self.down | self.cut))

    def _call(self, what: str, node: FakeNode | None = None) -> None:
        self.calls.append(what if node is None else f"{what} {node.name}")
        if what == self.fail:
            self.fail = ""
            raise chaos_cluster.ClusterError(f"{what} failed")

    def queues(self, vhost: str) -> list[dict[str, Any]]:
        leader = self.nodes[1].name
        members = [n.name for n in self.nodes]
        return [{"name": f"{s}.commands", "type": "quorum", "leader": leader, "members": members} for s in "ab"] + [
            {"name": f"{s}.commands", "type": "quorum", "leader": leader, "members": members}
            for s in chaos_cluster.LEADERS_OF
        ]

    def listening(self, node: FakeNode) -> bool:
        return node.name not in self.cut  # a node cut off pauses itself: it stops taking connections

    def kill(self, node: FakeNode) -> None:
        self._call("kill", node)
        self.down.add(node.name)
        self._away()

    def stop_node(self, node: FakeNode) -> None:
        self._call("stop_node", node)
        assert not self.down and not self.cut, "a node stopped while another is away"
        self.down.add(node.name)
        self._away()

    def start_node(self, node: FakeNode) -> None:
        self._call("start_node", node)
        self.down.discard(node.name)

    def partition(self, node: FakeNode) -> None:
        self._call("partition", node)
        self.cut.add(node.name)
        self._away()

    def heal(self, node: FakeNode) -> None:
        self._call("heal", node)
        self.cut.discard(node.name)

    def running(self, node: FakeNode) -> bool:
        return node.name not in self.down

    def wait_up(self, node: FakeNode) -> None:
        self._call("wait_up", node)
        assert node.name not in self.down | self.cut

    def wait_clustered(self) -> None:
        self._call("wait_clustered")
        assert not self.down and not self.cut


def faults_on(cluster: FakeCluster) -> ClusterFaults:
    return ClusterFaults(cluster, "vhost", Random(1), lambda what, detail: None, QUICK)  # type: ignore[arg-type]


async def test_each_fault_runs_once_and_never_two_nodes_are_away_at_once() -> None:
    cluster = FakeCluster()
    faults = faults_on(cluster)
    timeline = Timeline()
    await faults.run([Step(0.0, f, True) for f in FAULTS], timeline.t0, 1000.0)
    assert faults.counts == dict.fromkeys(FAULTS, 1) and not faults.errors
    assert cluster.worst == 1 and not cluster.down and not cluster.cut
    killed = next(d for d in faults.done if d["fault"] == KILL)
    assert killed["node"] == cluster.nodes[1].name and killed["led"] == len(chaos_cluster.LEADERS_OF) + 2
    cut = next(d for d in faults.done if d["fault"] == PARTITION)
    assert cut["paused after"] is not None
    rolled = next(d for d in faults.done if d["fault"] == ROLLING)
    assert sorted(rolled["nodes"]) == sorted(n.name for n in cluster.nodes)
    assert [c.split()[0] for c in cluster.calls].count("stop_node") == 3


async def test_a_fault_that_fails_is_said_the_cluster_restored_and_the_next_one_still_runs() -> None:
    cluster = FakeCluster(fail="wait_clustered")
    faults = faults_on(cluster)
    await faults.run([Step(0.0, KILL, True), Step(0.0, ROLLING, True)], Timeline().t0, 1000.0)
    assert len(faults.errors) == 1 and faults.errors[0].startswith(KILL)
    assert faults.counts == {ROLLING: 1}
    assert not cluster.down and not cluster.cut and faults.active is None


async def test_an_optional_fault_that_no_longer_fits_is_left_out() -> None:
    faults = faults_on(FakeCluster())
    await faults.run([Step(0.0, PARTITION, True), Step(0.0, KILL, False)], Timeline().t0, 10.0)
    assert faults.counts == {PARTITION: 1}


@dataclass
class FakeStack:
    services: list[str] = field(default_factory=lambda: ["leads-1", "sms-1"])
    gateways: list[str] = field(default_factory=lambda: ["gateway-1", "gateway-2"])


class FakeInfrastructure:
    def broker_refusal(self) -> str | None:
        return None

    def db_refusal(self) -> str | None:
        return None


def test_with_a_cluster_the_schedule_has_its_faults_instead_of_the_broker_stop() -> None:
    def schedule(cluster: ClusterFaults | None, broker: bool = True) -> Schedule:
        options = Options(180, broker=broker)
        return Schedule(FakeStack(), FakeInfrastructure(), [], Random(7), options, Timeline(), cluster)  # type: ignore[arg-type]

    alone = [name for _, name, _ in schedule(None).plan()]
    assert "broker" in alone and "cluster" not in alone
    faults = faults_on(FakeCluster())
    with_cluster = schedule(faults)
    names = [name for _, name, _ in with_cluster.plan()]
    assert "broker" not in names and names.count("cluster") == 1 and "database" in names
    assert "broker" not in with_cluster.skipped
    switched_off = schedule(faults, broker=False)
    assert "cluster" not in [name for _, name, _ in switched_off.plan()] and "cluster" in switched_off.skipped
    on_loopback = schedule(faults_on(FakeCluster(can_partition=False)))
    assert "cluster" in [name for _, name, _ in on_loopback.plan()] and PARTITION in on_loopback.skipped
    assert PARTITION not in possible(FakeCluster(can_partition=False))  # type: ignore[arg-type]
    assert all(
        PARTITION not in {s.fault for s in plan(Random(seed), 180, faults=(KILL, ROLLING))} for seed in range(20)
    )
