"""One chaos run, start to end.

provision a database and a vhost ─► start the stack (2 gateways, N instances of each service, sandbox)
─► screens open ─► load (--seconds) ∥ fault schedule ∥ supervisor ─► faults over, load over
─► every press without an answer sent again with its key ─► every process up ─► idle (deadline)
─► read tables, log, sandbox, queues ─► screens caught up ─► check ─► table
With --cluster: the broker is a RabbitMQ cluster (chaos/cluster.py); its queues' members are checked once the stack
has declared them, its faults join the schedule, and queue depths are asked of its nodes.
"""

import argparse
import asyncio
import json
import time
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any
from uuid import uuid4

import aio_pika
import asyncpg

from chaos import checker, report, state
from chaos import cluster as cluster_side
from chaos.clients import Broker, Gateways
from chaos.driver import Driver
from chaos.faults import Infrastructure, Options, Schedule, Timeline
from chaos.presses import Factory
from chaos.screens import Follower, Screen
from chaos.stack import ChaosStack
from services.gateway.auth import issue
from tests.support.cluster import Cluster
from tests.support.infra import Infra
from tests.support.stack import TEST_SECRET, eventually

USERS = ("agent-1", "agent-2", "agent-3", "agent-4")


async def idle(stack: ChaosStack, infra: Infra, org: str, timeout: float, cluster: Cluster | None = None) -> bool:
    """No outbox row, no message in a queue (parked ones aside), no SMS queued or sending, no campaign
    target waiting or sending."""

    async def quiet() -> bool:
        conn = await asyncpg.connect(infra.database_url)
        try:
            rows = sum([await conn.fetchval(f"SELECT count(*) FROM {s}.outbox") for s in state.SCHEMAS])
            sending = await conn.fetchval(
                "SELECT count(*) FROM sms.sms_messages WHERE org_id = $1 AND status IN ('queued', 'sending')", org
            )
            sending += await conn.fetchval(state.CAMPAIGNS_IN_FLIGHT, org)
        finally:
            await conn.close()
        try:
            queues = await state.queue_depths(infra.amqp_url, infra._vhost, cluster)
        except cluster_side.CTL_ERRORS:
            return False
        return rows == 0 and sending == 0 and not any(n for q, n in queues.items() if not q.endswith(".parked"))

    try:
        await eventually(quiet, timeout, 1.0, "the system to be idle")
        return True
    except AssertionError:
        return False


async def versions(infra: Infra) -> str:
    conn = await asyncpg.connect(infra.database_url)
    try:
        pg = (await conn.fetchval("SHOW server_version")).split()[0]
    finally:
        await conn.close()
    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        transport = connection.transport
        assert transport is not None  # (open inside its `async with`)
        rabbit = transport.connection.server_properties.get("version", b"?")
    return f"PostgreSQL {pg}, RabbitMQ {rabbit.decode() if isinstance(rabbit, bytes) else rabbit}"


async def run(
    args: argparse.Namespace,
    infra: Infra,
    stack: ChaosStack,
    infrastructure: Infrastructure,
    cluster: Cluster | None = None,
) -> dict[str, Any]:
    rng, started = Random(args.seed), datetime.now(UTC).isoformat(timespec="seconds")
    load_rng = Random(args.seed + 1)  # the load's own: the schedule stays the same whatever the load draws
    print(f"starting the stack (logs in {stack.log_dir})", flush=True)
    await stack.start()
    membership: dict[str, Any] = {}
    if cluster is not None:
        try:
            membership = await asyncio.to_thread(cluster_side.members, cluster, infra._vhost)
        except cluster_side.CTL_ERRORS as exc:
            membership = {"error": f"{type(exc).__name__}: {exc}"}
    org = f"chaos-{uuid4().hex[:8]}"
    tokens = {user: issue(TEST_SECRET, org, user) for user in USERS}
    viewer = issue(TEST_SECRET, org, "viewer")
    screens = [Screen(f"raw-{i}", stack.urls[i - 1 :] + stack.urls[: i - 1], viewer) for i in (1, 2)]
    followers = [Follower(f"crm_client-{i + 1}", url, viewer) for i, url in enumerate(stack.urls)]
    watchers: list[Screen | Follower] = [*screens, *followers]
    for watcher in watchers:
        watcher.start()
    gateways, broker = Gateways(stack.urls, tokens), Broker(infra.amqp_url)
    await gateways.open()
    driver = Driver(
        Factory(org, list(USERS), load_rng, args.broker_share, uuid4().hex[:6]),
        gateways,
        broker,
        load_rng,
        rate=args.rate,
        dup_share=args.dup_share,
        press_deadline=args.press_deadline,
    )
    timeline = Timeline()
    if membership:
        timeline.note("cluster", _members_line(membership))
    faults = None if cluster is None else cluster_side.ClusterFaults(cluster, infra._vhost, rng, timeline.note)
    schedule = Schedule(
        stack,
        infrastructure,
        screens,
        rng,
        Options(
            args.seconds,
            broker=args.broker_restart,
            db=args.db_restart,
            kills=args.kills,
            sandbox=args.sandbox,
            ws_drops=args.ws_drops,
            outage_seconds=args.outage_seconds,
        ),
        timeline,
        faults,
    )
    supervisor = asyncio.create_task(stack.supervise(timeline.note))
    try:
        print(f"load: {args.seconds:g} s at {args.rate:g} presses/s, organisation {org}", flush=True)
        await asyncio.gather(driver.run(args.seconds, args.workers), schedule.run())
        timeline.note("load", f"over: {len(driver.presses)} presses")
        await driver.resolve(time.monotonic() + args.settle)
        timeline.note("resolve", "every press has an answer, or its deadline passed")
        await stack.wait_all_ready()
    finally:
        supervisor.cancel()
        with suppress(asyncio.CancelledError):
            await supervisor
    quiet = await idle(stack, infra, org, args.idle_timeout, cluster)
    timeline.note("idle", "reached" if quiet else f"not reached in {args.idle_timeout:g} s")
    final = state.State()
    await state.read_log(infra.amqp_url, org, final)
    await state.read_db(infra.database_url, org, driver.presses, final)
    await state.read_sandbox(stack.sandbox_url, final)
    await state.read_queues(infra.amqp_url, infra._vhost, final, cluster)
    log_ids = {e["id"] for e in final.events}
    with suppress(AssertionError):
        await eventually(lambda: all(log_ids <= set(w.ids) for w in watchers), 60, 0.5, "the screens to catch up")
    for watcher in watchers:
        await watcher.stop()
    await gateways.close()
    await broker.close()
    result = checker.check(
        driver.presses, final, {w.name: (w.ids, w.reloads, getattr(w, "resumes", None)) for w in watchers}
    )
    dump_presses(driver, stack.log_dir / "presses.jsonl", timeline.t0)
    cluster_record = None
    if cluster is not None and faults is not None:
        failures = [f"cluster: {f}" for f in (*cluster_side.membership_failures(membership), *faults.errors)]
        if schedule.options.broker:
            failures += [
                f"cluster: {f} never exercised"
                for f in cluster_side.possible(cluster)
                if f not in faults.counts and not any(e.startswith(f) for e in faults.errors)
            ]
        result["failures"] += failures
        result["ok"] = not result["failures"]
        cluster_record = {
            "nodes": [n.name for n in cluster.nodes],
            "url": cluster.url(infra._vhost),
            "members": membership,
            "faults": faults.counts,
            "done": faults.done,
            "errors": faults.errors,
        }
    return {
        "started": started,
        "seconds": args.seconds,
        "rate": args.rate,
        "seed": args.seed,
        "instances": args.instances,
        "machine": report.machine(),
        "versions": await versions(infra),
        "faults": {**schedule.exercised, **(faults.counts if faults else {})},
        "skipped": schedule.skipped,
        "exits": [f"{name} (code {code})" for name, code in stack.exits],
        "timeline": [f"{t:7.1f}s {what} {detail}" for t, what, detail in timeline.lines],
        "broker_client_errors": broker.errors,
        "driver_errors": dict(driver.errors),
        "result": result,
        "log_dir": str(stack.log_dir),
        "cluster": cluster_record,
    }


def _members_line(found: dict[str, Any]) -> str:
    if "error" in found:
        return f"the queues' members could not be read: {found['error']}"
    short = found["short"]
    return f"{found['quorum']} quorum queues and {len(found['streams'])} stream ({', '.join(found['streams'])}): " + (
        ", ".join(f"{q} on {len(m)}" for q, m in short.items()) if short else f"each on all {found['nodes']} nodes"
    )


def dump_presses(driver: Driver, path: Path, t0: float) -> None:
    """One line per press (for reading a run's failures against the processes' logs)."""
    with path.open("w") as out:
        for p in driver.presses:
            out.write(
                json.dumps(
                    {
                        "seq": p.seq,
                        "kind": p.kind,
                        "via": p.via,
                        "user": p.user,
                        "key": p.key,
                        "message_id": p.message_id,
                        "outcome": p.outcome,
                        "status": p.status,
                        "sends": p.sends,
                        "failovers": p.failovers,
                        "dup_copies": p.dup_copies,
                        "at": round(p.started - t0, 2),
                        "took": round(p.ended - p.started, 2),
                        "body": p.operation.body,
                    },
                    default=str,
                )
                + "\n"
            )


def write(record: dict[str, Any], text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        text + "\n\ntimeline (seconds from the start of the load):\n" + "\n".join(record["timeline"]) + "\n"
    )
    path.with_suffix(".json").write_text(json.dumps(record, indent=2, default=str) + "\n")
