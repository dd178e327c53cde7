"""`python -m bench`: how much the broker pipeline costs a button press.

Measured, in one run on the same PostgreSQL server:

- pipeline: N status changes (new -> contacted, each lead once, so each is a real
  change with one event) sent as POST /api/leads/update-status to the real
  gateway, which publishes them to RabbitMQ for the leads service (inbox, outbox,
  reply); per request the HTTP latency (send -> answer) and the press -> websocket
  latency (send -> arrival of that lead's `leads.status_changed` event on a
  websocket opened on the gateway);
- baseline: the same N changes on other leads through `bench.baseline`, a plain
  aiohttp app doing the same transaction straight on PostgreSQL (no broker).

Both are driven by the same code: one aiohttp ClientSession, `--concurrency`
requests in flight, after a warm-up that is not measured. The processes run with
production settings, logging at WARNING. Everything is provisioned in an
isolated database and vhost, released at the end.
"""
import argparse
import asyncio
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any
from uuid import uuid4

from bench import report, seed
from bench.driver import Listener, client, drive, update_jobs
from bench.processes import start_baseline, start_pipeline
from services.gateway.auth import issue
from tests.support import infra as infra_mod
from tests.support.stack import TEST_SECRET

TOPIC = "leads.status_changed"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=int(os.environ.get("BENCH_REQUESTS", 2000)),
                        help="measured status changes per system (env BENCH_REQUESTS; default 2000)")
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("BENCH_CONCURRENCY", 32)),
                        help="requests in flight (env BENCH_CONCURRENCY; default 32)")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured changes first (default 100)")
    parser.add_argument("--event-timeout", type=float, default=60, help="max wait for missing events, s")
    parser.add_argument("--request-timeout", type=float, default=30, help="client timeout per request, s")
    parser.add_argument("--timeout", type=float, default=900, help="the whole run's time limit, s")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    args = parser.parse_args()
    if args.requests < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--requests and --concurrency must be >= 1, --warmup >= 0")
    return args


def tenant() -> tuple[str, str]:
    org = f"bench-{uuid4().hex[:8]}"
    return org, issue(TEST_SECRET, org, "bench-agent")


async def measure_pipeline(url: str, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    _, token = tenant()
    async with client(args.concurrency, args.request_timeout) as http, client(1, None) as ws_http:
        ids = await seed.via_gateway(http, url, token, args.warmup + args.requests, args.concurrency)
        warm, measured = ids[: args.warmup], ids[args.warmup:]
        events = Listener()
        await events.open(ws_http, url, token, [TOPIC])
        try:
            await drive(http, f"{url}/api/leads/update-status", token, update_jobs(warm), args.concurrency)
            await events.wait_for(warm, args.event_timeout)
            samples = await drive(http, f"{url}/api/leads/update-status", token, update_jobs(measured),
                                  args.concurrency)
            await events.wait_for(measured, args.event_timeout)
        finally:
            await events.close()
    return report.http_figures(samples), report.event_figures(samples, events.arrivals, events.closed), measured


async def measure_baseline(url: str, database_url: str, args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    org, token = tenant()
    ids = await seed.via_sql(database_url, org, "bench-agent", args.warmup + args.requests)
    warm, measured = ids[: args.warmup], ids[args.warmup:]
    async with client(args.concurrency, args.request_timeout) as http:
        await drive(http, f"{url}/update-status", token, update_jobs(warm), args.concurrency)
        samples = await drive(http, f"{url}/update-status", token, update_jobs(measured), args.concurrency)
    return report.http_figures(samples), measured


async def measure(infra: infra_mod.Infra, log_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    machine = report.machine()  # before the run, so that its load average is the machine's, not ours
    stack = await start_pipeline(infra, log_dir)
    try:
        pipeline, events, pipeline_ids = await measure_pipeline(stack.url, args)
    finally:
        await asyncio.to_thread(stack.stop_all)
    baseline_process, url = await start_baseline(infra, log_dir)
    try:
        baseline, baseline_ids = await measure_baseline(url, infra.database_url, args)
    finally:
        await asyncio.to_thread(baseline_process.stop)
    changed = {"pipeline": await seed.count_status(infra.database_url, pipeline_ids, "contacted"),
               "baseline": await seed.count_status(infra.database_url, baseline_ids, "contacted")}
    return {"requests": args.requests, "concurrency": args.concurrency, "warmup": args.warmup,
            "machine": machine, "pipeline": pipeline, "events": events, "baseline": baseline,
            "db_changed": changed, "ratios": report.ratios(pipeline, baseline)}


async def main(args: argparse.Namespace) -> int:
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
        ok = not (result["pipeline"]["errors"] or result["baseline"]["errors"] or result["events"]["missing"])
        return 0 if ok else 1
    finally:
        await infra_mod.release(infra)
        if ok:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            print(f"process logs kept in {log_dir}")


if __name__ == "__main__":
    try:
        raise SystemExit(asyncio.run(main(parse_args())))
    except KeyboardInterrupt:
        raise SystemExit(130) from None
