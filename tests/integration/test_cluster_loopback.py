"""The cluster where network namespaces cannot be made (tests/support/cluster.py, `isolated=False`): three nodes on
this machine's loopback, each on ports of its own, clustered behind HAProxy; a quorum queue has a member on each,
a confirmed message outlives its leader's SIGKILL, and nothing of the cluster is left once it stops."""

import asyncio

import aio_pika
import pytest

from tests.support import cluster as cluster_mod
from tests.support.cluster import Cluster, ClusterError
from tests.support.stack import eventually

WHY_NOT = cluster_mod.available()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=f"no RabbitMQ cluster on this machine: {WHY_NOT}")


async def taken(url: str) -> bytes | None:
    """The message of `kept`, taken (through HAProxy: a live node); None while the two left elect a leader."""
    try:
        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue("kept", passive=True)
            message = await queue.get(fail=False)
            if message is None:
                return None
            await message.ack()
            return message.body
    except aio_pika.exceptions.AMQPError:  # "nodedown" until the election is over
        return None


async def test_three_nodes_on_loopback_keep_a_confirmed_message_through_a_kill_and_leave_nothing() -> None:
    cluster = await asyncio.to_thread(Cluster(isolated=False).start)
    groups: list[int] = []
    try:
        assert not cluster.can_partition and all(n.namespace is None for n in cluster.nodes)
        assert len({n.amqp_port for n in cluster.nodes}) == 3
        groups = [int((n.directory / "pgid").read_text()) for n in cluster.nodes]
        await asyncio.to_thread(cluster.add_vhost, "loop")
        connection = await aio_pika.connect(cluster.url("loop"))
        async with connection:
            channel = await connection.channel()
            await channel.declare_queue("kept", durable=True, arguments={"x-queue-type": "quorum"})
            await channel.default_exchange.publish(aio_pika.Message(b"once", delivery_mode=2), "kept")
        members = {q["name"]: q for q in await asyncio.to_thread(cluster.queues, "loop")}["kept"]
        assert set(members["members"]) == {n.name for n in cluster.nodes}
        leader = await asyncio.to_thread(cluster.leader, "loop", "kept")
        await asyncio.to_thread(cluster.kill, leader)
        assert not cluster.running(leader)
        with pytest.raises(ClusterError, match="namespaces"):
            cluster.partition(cluster.nodes[0])
        assert await eventually(lambda: taken(cluster.url("loop")), 30, what="the message from the two left") == b"once"
        await asyncio.to_thread(cluster.restart_node, leader)
        assert all(cluster.running(n) for n in cluster.nodes)
    finally:
        await asyncio.to_thread(cluster.stop)
    assert groups and not any(cluster_mod.alive(g) for g in groups)
    assert not cluster.directory.exists()
