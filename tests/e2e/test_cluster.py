"""The pipeline on a three-node RabbitMQ cluster (tests/support/cluster.py: namespaces, HAProxy in front): every
quorum queue and the event log have a member on each node; the node that leads the command queue is killed, and a
press made just before and one made during are each applied once, and an open screen sees each change once."""

import asyncio
import time
from collections.abc import AsyncIterator
from uuid import uuid4

import aiohttp
import pytest

from services.gateway.auth import issue
from tests.conftest import Api
from tests.support import cluster as cluster_mod
from tests.support import infra as infra_mod
from tests.support.cluster import Cluster
from tests.support.realtime import ResumingScreen
from tests.support.stack import TEST_SECRET, Stack, eventually

WHY_NOT = cluster_mod.available()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=f"no RabbitMQ cluster on this machine: {WHY_NOT}")

ENV = {"REPLY_TIMEOUT": "3", "PUBLISH_TIMEOUT": "2", "QUERY_TIMEOUT": "3", "RETRY_DELAYS": "0.2,0.4,0.8"}


@pytest.fixture(scope="module")
async def on_cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Cluster, Stack, str]]:
    """The cluster, a database of its own on the local PostgreSQL, and the leads service and a gateway on them."""
    cluster = await asyncio.to_thread(Cluster().start)
    try:
        infra = await infra_mod.provision_on(cluster)
        stack = Stack({**infra.env(), **ENV}, tmp_path_factory.mktemp("cluster-logs"))
        try:
            stack.start("leads")
            await stack.wait_started("leads")
            stack.start("gateway")
            await stack.wait_gateway_ready()
            yield cluster, stack, infra._vhost
        finally:
            stack.stop_all()
            await infra_mod.release_on(cluster, infra)
    finally:
        await asyncio.to_thread(cluster.stop)


async def press(api: Api, path: str, body: dict, key: str, timeout: float = 60) -> dict:
    """A press as a client makes it: sent again with its one key until it has its final answer."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, _, answer = await api.post(path, body, key=key)
        except aiohttp.ClientError:
            status, answer = 0, None
        if status == 200:
            return answer  # type: ignore[return-value]
        assert status in (0, 202, 503), (status, answer)  # accepted and not answered yet, or unavailable: again
        assert time.monotonic() < deadline, f"no final answer within {timeout:.0f} s: {status} {answer}"
        await asyncio.sleep(0.3)


async def test_every_quorum_queue_and_the_event_log_have_a_member_on_each_node(
    on_cluster: tuple[Cluster, Stack, str],
) -> None:
    cluster, _, vhost = on_cluster
    queues = {q["name"]: q for q in await asyncio.to_thread(cluster.queues, vhost)}
    assert queues["events.log"]["type"] == "stream" and queues["leads.commands"]["type"] == "quorum"
    everyone = {node.name for node in cluster.nodes}
    replicated = [q for q in queues.values() if q["type"] in ("quorum", "stream")]
    assert replicated and all(set(q["members"]) == everyone for q in replicated), replicated


async def test_the_leader_killed_a_press_before_and_one_during_are_each_applied_once(
    on_cluster: tuple[Cluster, Stack, str], http: aiohttp.ClientSession
) -> None:
    cluster, stack, vhost = on_cluster
    org = f"org-{uuid4().hex[:8]}"
    api = Api(http, stack.url, issue(TEST_SECRET, org, "agent-1"))
    lead = (await api.create_lead())["id"]
    screen = ResumingScreen(http, stack.url, org, topics=["leads.#"])
    await screen.connect()
    before = await press(api, "/api/leads/update-status", {"leadId": lead, "status": "contacted"}, "before-kill")
    assert before["lead"]["status"] == "contacted"

    leader = await asyncio.to_thread(cluster.leader, vhost, "leads.commands")
    await asyncio.to_thread(cluster.kill, leader)  # the queue's leader, and every connection through it, gone
    during = await press(api, "/api/leads/update-status", {"leadId": lead, "status": "qualified"}, "during-kill")
    assert during["lead"]["status"] == "qualified"
    again = await press(api, "/api/leads/update-status", {"leadId": lead, "status": "qualified"}, "during-kill")
    assert again == during  # the same key: the same answer, no second effect
    assert (await asyncio.to_thread(cluster.leader, vhost, "leads.commands")) is not leader  # (another node leads)

    _, _, history = await api.get(f"/api/leads/{lead}/history")
    moves = [(h["from"], h["to"]) for h in history["history"]]  # type: ignore[index]
    assert moves.count(("new", "contacted")) == 1 and moves.count(("contacted", "qualified")) == 1, moves

    async def both_seen() -> bool:
        if screen.closed:  # the gateway's log reader moved to another node: the screen resumes where it was
            await screen.connect()
        return len(screen.of("leads.status_changed")) >= 2

    await eventually(both_seen, 60, what="the screen to see both changes")
    changes = screen.of("leads.status_changed")
    assert [e["data"]["to"] for e in changes] == ["contacted", "qualified"]
    assert len({e["id"] for e in changes}) == len(changes)
    await screen.drop()
    await asyncio.to_thread(cluster.restart_node, leader)  # (and the cluster is whole again)
