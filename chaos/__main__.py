"""`python -m chaos`: every button pressed at a steady rate while processes, the broker, the database and
the SMS provider fail; then a table of what each press did. It fails unless lost = duplicated =
unexpected = 0 and nothing is left in flight.

Own database and vhost (released at the end), loopback only, bounded in time; the broker and the
database (the machine's own) are always started again, also when the run fails or is interrupted.

--cluster 3: the run's broker is a three-node RabbitMQ cluster started on this machine for the run (network
namespaces behind HAProxy, tests/support/cluster.py; needs root, haproxy and iptables: `make cluster-tools`), and
its nodes fail besides: the leader of a command queue SIGKILLed, a node cut off by a partition, a rolling restart
(chaos/cluster.py). The cluster is stopped at the end, also when the run fails (or by its watchdog, killed).
"""

import argparse
import asyncio
import logging
import os
import shutil
import signal
import tempfile
from pathlib import Path

from chaos import report
from chaos.faults import Infrastructure
from chaos.run import run, write
from chaos.stack import ChaosStack
from tests.support import cluster as cluster_mod
from tests.support import infra as infra_mod


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m chaos", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add(
        "--seconds",
        type=float,
        default=float(os.environ.get("CHAOS_SECONDS", 180)),
        help="seconds of load and faults (env CHAOS_SECONDS; default 180)",
    )
    add("--rate", type=float, default=12, help="presses per second offered (default 12)")
    add("--workers", type=int, default=48, help="journeys at once (default 48)")
    add("--seed", type=int, default=int(os.environ.get("CHAOS_SEED", 7)), help="the schedule's and the load's seed")
    add("--instances", type=int, default=2, help="instances of each service (default 2)")
    add("--broker-share", type=float, default=0.15, help="share of presses sent straight through the broker")
    add("--dup-share", type=float, default=0.1, help="share of gateway presses also published to the broker")
    add("--press-deadline", type=float, default=60, help="seconds a press is retried during the load")
    add("--settle", type=float, default=150, help="seconds to answer every press after the load")
    add(
        "--idle-timeout",
        type=float,
        default=90,
        help="seconds to wait for the system to be idle after that (longer than the services' retry tiers)",
    )
    add("--outage-seconds", type=float, default=4, help="how long the broker or the database stays down")
    add(
        "--cluster",
        type=int,
        default=0,
        metavar="NODES",
        help="run on a RabbitMQ cluster of NODES (3 or more) nodes started here for the run, with node kills, a "
        "partition and a rolling restart instead of the broker's stop (needs root; `make chaos CLUSTER=3`)",
    )
    add(
        "--no-broker-restart",
        dest="broker_restart",
        action="store_false",
        help="leave RabbitMQ running (with --cluster: no node is killed, cut off or restarted)",
    )
    add("--no-db-restart", dest="db_restart", action="store_false", help="leave PostgreSQL running")
    add("--no-kills", dest="kills", action="store_false", help="no SIGKILL of services or gateways")
    add("--no-sandbox-faults", dest="sandbox", action="store_false", help="the Twilio sandbox behaves")
    add("--no-ws-drops", dest="ws_drops", action="store_false", help="the raw screens are not dropped")
    add(
        "--report",
        type=Path,
        default=Path("var/chaos-report.txt"),
        help="the table (and its .json beside it); default var/chaos-report.txt",
    )
    add("--timeout", type=float, default=0, help="the whole run's limit (default: --seconds + 600)")
    add("--keep-logs", action="store_true", help="keep the processes' logs after a passing run")
    args = parser.parse_args()
    if args.cluster and args.cluster < 3:
        parser.error("--cluster: 3 nodes or more (a node down must leave a majority)")
    args.timeout = args.timeout or args.seconds + 600
    return args


async def main(args: argparse.Namespace) -> int:
    # The driver's own broker and websocket clients see every outage; their libraries' log lines would
    # bury the timeline (the clients count their errors, reported in the JSON).
    for noisy in ("aiormq", "aio_pika", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    main_task = asyncio.current_task()
    assert main_task is not None  # (a coroutine run by asyncio.run: its task)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    cluster = None
    if args.cluster:
        if (why := cluster_mod.available()) is not None:
            print(f"--cluster: no cluster here: {why}")
            return 2
        cluster = cluster_mod.Cluster(size=args.cluster)
    try:
        if cluster is not None:
            print(f"starting a RabbitMQ cluster of {args.cluster} nodes", flush=True)
            await asyncio.to_thread(cluster.start)
            print(f"cluster up: {', '.join(n.name for n in cluster.nodes)}, HAProxy on 127.0.0.1:{cluster.port}")
            infra = await infra_mod.provision_on(cluster, prefix="crm_chaos")
        else:
            infra = await infra_mod.provision(prefix="crm_chaos")
        return await _run(args, infra, cluster)
    finally:
        if cluster is not None:
            await asyncio.to_thread(cluster.stop)
            print(f"cluster stopped (its logs in {cluster_mod.BASE / 'last'})")


async def _run(args: argparse.Namespace, infra: infra_mod.Infra, cluster: cluster_mod.Cluster | None) -> int:
    stack = ChaosStack(infra, Path(tempfile.mkdtemp(prefix="crm-chaos-")), args.instances)
    infrastructure = Infrastructure(infra.amqp_url, infra.database_url)
    ok = False
    try:
        async with asyncio.timeout(args.timeout):
            record = await run(args, infra, stack, infrastructure, cluster)
        text = report.render(record)
        print("\n" + text)
        write(record, text, args.report)
        print(f"\nwritten to {args.report} and {args.report.with_suffix('.json')}")
        ok = record["result"]["ok"]
        return 0 if ok else 1
    except TimeoutError:
        print(f"the run took longer than --timeout {args.timeout:g} s and was stopped")
        return 1
    finally:
        await asyncio.to_thread(infrastructure.restore)
        await asyncio.to_thread(stack.stop)
        await (infra_mod.release(infra) if cluster is None else infra_mod.release_on(cluster, infra))
        if ok and not args.keep_logs:
            shutil.rmtree(stack.log_dir, ignore_errors=True)
        else:
            print(f"process logs kept in {stack.log_dir}")


if __name__ == "__main__":
    try:
        raise SystemExit(asyncio.run(main(parse())))
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except asyncio.CancelledError:
        raise SystemExit(143) from None
