"""`python -m bench`: how much the broker pipeline costs a button press.

Measured, in one run on the same PostgreSQL server:

- pipeline: N status changes (new -> contacted, each lead once, so each is a real
  change with one event) sent as POST /api/leads/update-status to the real
  gateway, which publishes them to RabbitMQ for the leads service (inbox, outbox,
  reply); per request the HTTP latency (send -> answer) and the press -> websocket
  latency (send -> arrival of that lead's `leads.status_changed` event on a
  websocket opened on the gateway);
- baseline: the same N changes on other leads through `bench.baseline`, a plain
  aiohttp app doing the same transaction straight on PostgreSQL (no broker);
- floor: the same N changes on other leads through `bench.floor`, the architecture's floor: our
  shape with none of our guarantees (an aiohttp app doing RPC over RabbitMQ to `bench.floor_worker`,
  a FastStream consumer on a quorum queue doing the baseline's transaction; no inbox, outbox, events
  or retries);
- the same status change one press at a time (`--idle-requests`), and at 8, 32 and 128 in flight
  (`--growth-requests` each; `--no-growth` skips them), for the three systems (`bench.levels`);
- two more buttons on the same stack, after the status changes (`bench.buttons`):
  confirm an appointment (POST /api/bookings/confirm) and send an SMS
  (POST /api/leads/send-sms, through the SMS service and the Twilio sandbox),
  `--button-requests` each, HTTP latency and press -> websocket event;
- a bulk change of 1,000 leads, `--bulk-presses` times, one at a time (`bench.bulk`);
- an SMS campaign of `--campaign-leads` (1,000) leads through the Twilio sandbox, at a configured rate of
  200 sends/s (`bench.campaign`; `--no-campaign` skips it): the time from its start to the last send, sends
  per second against that rate, and one SMS per lead;
- realtime on the same stack (`bench.realtime`, `--no-realtime` skips it): press -> event on
  `--realtime-subscribers` websockets of one organisation on the one gateway, the frames delivered per
  second, the gateway's memory per connection, a replay of `--realtime-replay` events to one
  reconnecting client, and at scale (`--no-realtime-scale` skips it): a resume among 100,000 other
  organisations' events (`bench.resume`) and 200 screens resuming after a gateway restart (`bench.herd`);
- the VmRSS of every process of the stack once all of the above ran;
- with `--cluster` (off by default), what replication costs (`bench.replication`): the status change at 32 in
  flight and one press at a time on this machine's RabbitMQ and on a 3-node cluster through HAProxy
  (tests/support/cluster.py), alternating for `--cluster-rounds` rounds, each run on a stack, database and vhost
  of its own; medians and cluster / single ratios.

It ends with the goals of issues 8 and 19: each figure, its target, met or not (`bench.goals`).

All are driven by the same code: one aiohttp ClientSession, `--concurrency`
requests in flight, after a warm-up that is not measured. The processes run with
production settings, logging at WARNING. Everything is provisioned in an
isolated database and vhost, released at the end (also on error, Ctrl-C or SIGTERM).

The stack is the full one (Twilio sandbox, leads, bookings, sms, gateway). The
bookings and sms services take in every lead created; the run waits until they
did before it measures, so their catching up is not measured with the presses.
"""

import argparse
import asyncio
import json
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from bench import (
    bulk,
    buttons,
    campaign,
    checks,
    goals,
    levels,
    procfs,
    realtime,
    replication,
    report,
    scaling,
    seed,
)
from bench.driver import Listener, client, drive, update_jobs
from bench.options import parse
from bench.processes import start_baseline, start_floor, start_pipeline
from tests.support import cluster as cluster_mod
from tests.support import infra as infra_mod

TOPIC = "leads.status_changed"


async def measure_pipeline(
    url: str, database_url: str, args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    org, token = seed.tenant()
    async with client(args.concurrency, args.request_timeout) as http, client(1, None) as ws_http:
        ids = await seed.via_gateway(http, url, token, args.warmup + args.requests, args.concurrency)
        await checks.wait_projected(database_url, org, len(ids), args.event_timeout)
        warm, measured = ids[: args.warmup], ids[args.warmup :]
        events = Listener()
        await events.open(ws_http, url, token, [TOPIC])
        try:
            await drive(http, f"{url}/api/leads/update-status", token, update_jobs(warm), args.concurrency)
            await events.wait_for(warm, args.event_timeout)
            samples = await drive(
                http, f"{url}/api/leads/update-status", token, update_jobs(measured), args.concurrency
            )
            await events.wait_for(measured, args.event_timeout)
        finally:
            await events.close()
    return report.http_figures(samples), report.event_figures(samples, events.arrivals, events.closed), measured


async def measure_peer(url: str, database_url: str, args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """The baseline's or the floor's main measurement: both answer POST /update-status, on leads seeded in SQL."""
    org, token = seed.tenant()
    ids = await seed.via_sql(database_url, org, "bench-agent", args.warmup + args.requests)
    warm, measured = ids[: args.warmup], ids[args.warmup :]
    async with client(args.concurrency, args.request_timeout) as http:
        await drive(http, f"{url}/update-status", token, update_jobs(warm), args.concurrency)
        samples = await drive(http, f"{url}/update-status", token, update_jobs(measured), args.concurrency)
    return report.http_figures(samples), measured


async def measure(infra: infra_mod.Infra, log_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    machine = report.machine()  # before the run, so that its load average is the machine's, not ours
    if args.realtime:  # before the stack starts: its processes inherit the limit
        procfs.raise_fd_limit(args.realtime_subscribers)
    plan = levels.plan(args)
    stack = await start_pipeline(infra, log_dir)
    try:
        pipeline, events, pipeline_ids = await measure_pipeline(stack.url, infra.database_url, args)
        pipeline_levels = await levels.pipeline(stack.url, infra.database_url, plan, args)
        other_buttons = await buttons.measure(stack.url, stack.sandbox_url, infra.database_url, args)
        bulk_figures = await bulk.measure(stack.url, infra.database_url, args)
        campaign_figures = (
            await campaign.measure(stack.url, stack.sandbox_url, infra.database_url, args) if args.campaign else None
        )
        scale = await scaling.measure(stack, infra.amqp_url, infra.database_url, args) if args.scaling else None
        live = await realtime.measure(stack, infra.database_url, infra.amqp_url, args) if args.realtime else None
        pids = {name: p.popen.pid for name, p in stack.processes.items() if p.popen}
        memory = {"when": "every section run, before the stack stopped", "rss_kib": procfs.stack_rss_kib(pids)}
    finally:
        await asyncio.to_thread(stack.stop_all)
    baseline_process, url = await start_baseline(infra, log_dir)
    try:
        baseline, baseline_ids = await measure_peer(url, infra.database_url, args)
        baseline_levels = await levels.peer(url, infra.database_url, plan, args)
    finally:
        await asyncio.to_thread(baseline_process.stop)
    floor_processes = await start_floor(infra, log_dir)
    try:
        floor, floor_ids = await measure_peer(floor_processes.url, infra.database_url, args)
        floor_levels = await levels.peer(floor_processes.url, infra.database_url, plan, args)
    finally:
        await asyncio.to_thread(floor_processes.stop)
    replicated = await replication.measure(log_dir, args) if args.cluster else None
    changed = {
        "pipeline": await seed.count_status(infra.database_url, pipeline_ids, "contacted"),
        "baseline": await seed.count_status(infra.database_url, baseline_ids, "contacted"),
        "floor": await seed.count_status(infra.database_url, floor_ids, "contacted"),
    }
    result = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "warmup": args.warmup,
        "machine": machine,
        "pipeline": pipeline,
        "events": events,
        "baseline": baseline,
        "floor": floor,
        "db_changed": changed,
        "ratios": report.ratios(pipeline, baseline, floor),
        "buttons": other_buttons,
        "growth": args.growth,
        "bulk": bulk_figures,
        "campaign": campaign_figures,
        "scaling": scale,
        "realtime": live,
        "memory": memory,
    }
    if replicated is not None:  # (a default run's figures are those it always had)
        result["replication"] = replicated
    result["levels"] = levels.combine(result, pipeline_levels, baseline_levels, floor_levels)
    result["goals"] = goals.evaluate(result)
    return result


async def main(args: argparse.Namespace) -> int:
    # SIGTERM ends the run like Ctrl-C: processes stopped, database and vhost dropped.
    main_task = asyncio.current_task()
    assert main_task is not None  # (a coroutine run by asyncio.run: its task)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    if args.cluster and (why := cluster_mod.available()) is not None:  # said now, not after the other sections
        print(f"--cluster: no cluster here: {why}")
        return 2
    infra = await infra_mod.provision(prefix="crm_bench")
    log_dir = Path(tempfile.mkdtemp(prefix="crm-bench-"))
    ok = False
    try:
        try:
            async with asyncio.timeout(args.timeout):
                result = await measure(infra, log_dir, args)
        except TimeoutError:
            print(f"the run took longer than --timeout {args.timeout:g} s and was stopped")
            return 1
        print(report.render(result))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        ok = not (
            levels.failed(result["levels"])
            or report.buttons_failed(result["buttons"])
            or bulk.failed(result["bulk"])
            or campaign.failed(result["campaign"])
            or scaling.failed(result["scaling"])
            or realtime.failed(result["realtime"])
            or replication.failed(result.get("replication"))
        )
        return 0 if ok else 1
    finally:
        await infra_mod.release(infra)
        if ok and not args.keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            print(f"process logs kept in {log_dir}")


if __name__ == "__main__":
    try:
        raise SystemExit(asyncio.run(main(parse(__doc__))))
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except asyncio.CancelledError:  # SIGTERM
        raise SystemExit(143) from None
