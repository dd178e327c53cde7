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
- two more buttons on the same stack, after the status changes (`bench.buttons`):
  confirm an appointment (POST /api/bookings/confirm) and send an SMS
  (POST /api/leads/send-sms, through the SMS service and the Twilio sandbox),
  `--button-requests` each, HTTP latency and press -> websocket event;
- realtime on the same stack (`bench.realtime`, `--no-realtime` skips it): press -> event on
  `--realtime-subscribers` websockets of one organisation on the one gateway, the frames delivered per
  second, the gateway's memory per connection, and a replay of `--realtime-replay` events to one
  reconnecting client.

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
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from bench import buttons, checks, procfs, realtime, report, seed
from bench.driver import Listener, client, drive, update_jobs
from bench.processes import start_baseline, start_pipeline
from tests.support import infra as infra_mod

TOPIC = "leads.status_changed"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=int(os.environ.get("BENCH_REQUESTS", 2000)),
                        help="measured status changes per system (env BENCH_REQUESTS; default 2000)")
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("BENCH_CONCURRENCY", 32)),
                        help="requests in flight (env BENCH_CONCURRENCY; default 32)")
    parser.add_argument("--button-requests", type=int, default=int(os.environ.get("BENCH_BUTTON_REQUESTS", 500)),
                        help="measured presses of confirm and of send-sms each (env BENCH_BUTTON_REQUESTS; "
                             "default 500)")
    parser.add_argument("--realtime-subscribers", type=int,
                        default=int(os.environ.get("BENCH_SUBSCRIBERS", 1000)),
                        help="websockets of one organisation on the gateway in the realtime section "
                             "(env BENCH_SUBSCRIBERS; default 1000)")
    parser.add_argument("--realtime-presses", type=int, default=300,
                        help="measured status changes fanned out to them (default 300, 8 in flight)")
    parser.add_argument("--realtime-replay", type=int, default=10_000,
                        help="events replayed to one reconnecting client (default 10000)")
    parser.add_argument("--no-realtime", dest="realtime", action="store_false", help="skip the realtime section")
    parser.add_argument("--warmup", type=int, default=100,
                        help="unmeasured presses first, per system and per button (default 100)")
    parser.add_argument("--event-timeout", type=float, default=60, help="max wait for missing events, s")
    parser.add_argument("--request-timeout", type=float, default=30, help="client timeout per request, s")
    parser.add_argument("--timeout", type=float, default=900, help="the whole run's time limit, s")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs also after a clean run")
    args = parser.parse_args()
    if args.requests < 1 or args.button_requests < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--requests, --button-requests and --concurrency must be >= 1, --warmup >= 0")
    if args.realtime and min(args.realtime_subscribers, args.realtime_presses, args.realtime_replay) < 1:
        parser.error("--realtime-subscribers, --realtime-presses and --realtime-replay must be >= 1")
    return args


async def measure_pipeline(url: str, database_url: str,
                           args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    org, token = seed.tenant()
    async with client(args.concurrency, args.request_timeout) as http, client(1, None) as ws_http:
        ids = await seed.via_gateway(http, url, token, args.warmup + args.requests, args.concurrency)
        await checks.wait_projected(database_url, org, len(ids), args.event_timeout)
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
    org, token = seed.tenant()
    ids = await seed.via_sql(database_url, org, "bench-agent", args.warmup + args.requests)
    warm, measured = ids[: args.warmup], ids[args.warmup:]
    async with client(args.concurrency, args.request_timeout) as http:
        await drive(http, f"{url}/update-status", token, update_jobs(warm), args.concurrency)
        samples = await drive(http, f"{url}/update-status", token, update_jobs(measured), args.concurrency)
    return report.http_figures(samples), measured


async def measure(infra: infra_mod.Infra, log_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    machine = report.machine()  # before the run, so that its load average is the machine's, not ours
    if args.realtime:  # before the stack starts: its processes inherit the limit
        procfs.raise_fd_limit(args.realtime_subscribers)
    stack = await start_pipeline(infra, log_dir)
    try:
        pipeline, events, pipeline_ids = await measure_pipeline(stack.url, infra.database_url, args)
        other_buttons = await buttons.measure(stack.url, stack.sandbox_url, infra.database_url, args)
        live = await realtime.measure(stack, infra.database_url, infra.amqp_url, args) if args.realtime else None
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
            "db_changed": changed, "ratios": report.ratios(pipeline, baseline), "buttons": other_buttons,
            "realtime": live}


async def main(args: argparse.Namespace) -> int:
    # SIGTERM ends the run like Ctrl-C: processes stopped, database and vhost dropped.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)  # type: ignore[union-attr]
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
        ok = not (result["pipeline"]["errors"] or result["baseline"]["errors"] or result["events"]["missing"]
                  or report.buttons_failed(result["buttons"]) or realtime.failed(result["realtime"]))
        return 0 if ok else 1
    finally:
        await infra_mod.release(infra)
        if ok and not args.keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            print(f"process logs kept in {log_dir}")


if __name__ == "__main__":
    try:
        raise SystemExit(asyncio.run(main(parse_args())))
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except asyncio.CancelledError:  # SIGTERM
        raise SystemExit(143) from None
