"""The command line of `python -m bench` (the description is the package's __main__ docstring)."""

import argparse
import os
from pathlib import Path


def _env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def parse(description: str | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add(
        "--requests",
        type=int,
        default=_env("BENCH_REQUESTS", 2000),
        help="measured status changes per system (env BENCH_REQUESTS; default 2000)",
    )
    add(
        "--concurrency",
        type=int,
        default=_env("BENCH_CONCURRENCY", 32),
        help="requests in flight (env BENCH_CONCURRENCY; default 32)",
    )
    add(
        "--button-requests",
        type=int,
        default=_env("BENCH_BUTTON_REQUESTS", 500),
        help="measured presses of confirm and of send-sms each (env BENCH_BUTTON_REQUESTS; default 500)",
    )
    add(
        "--idle-requests", type=int, default=300, help="measured status changes one at a time, per system (default 300)"
    )
    add(
        "--growth-requests",
        type=int,
        default=1000,
        help="measured status changes per system at each of 8, 32 and 128 in flight (default 1000; a level "
        "equal to --concurrency is the main measurement)",
    )
    add("--no-growth", dest="growth", action="store_false", help="skip 8, 32 and 128 in flight")
    add("--bulk-presses", type=int, default=5, help="measured bulk changes of 1,000 leads (default 5)")
    add("--campaign-leads", type=int, default=1000, help="leads of the SMS campaign (default 1000)")
    add("--no-campaign", dest="campaign", action="store_false", help="skip the SMS campaign")
    add(
        "--scaling-requests",
        type=int,
        default=1000,
        help="status changes per shape of the scaling section (1 and 2 leads services x 1 and 2 gateways)",
    )
    add("--no-scaling", dest="scaling", action="store_false", help="skip the scaling section")
    add(
        "--realtime-subscribers",
        type=int,
        default=_env("BENCH_SUBSCRIBERS", 1000),
        help="websockets of one organisation on the gateway in the realtime section "
        "(env BENCH_SUBSCRIBERS; default 1000)",
    )
    add(
        "--realtime-presses",
        type=int,
        default=300,
        help="measured status changes fanned out to them (default 300, 8 in flight)",
    )
    add(
        "--realtime-replay", type=int, default=10_000, help="events replayed to one reconnecting client (default 10000)"
    )
    add(
        "--realtime-others",
        type=int,
        default=100_000,
        help="events of 100 other organisations between a screen's position and its resume (default 100000)",
    )
    add(
        "--realtime-own",
        type=int,
        default=1000,
        help="the screen's own events among them, the last one its own (default 1000)",
    )
    add(
        "--realtime-herd-screens",
        type=int,
        default=200,
        help="screens resuming at once after a gateway restart, each its own user (default 200)",
    )
    add("--realtime-herd-orgs", type=int, default=20, help="their organisations (default 20)")
    add(
        "--realtime-herd-events",
        type=int,
        default=50,
        help="events per organisation of the herd published while the gateway is down (default 50)",
    )
    add(
        "--realtime-herd-others",
        type=int,
        default=10_000,
        help="events of 100 other organisations published among them (default 10000)",
    )
    add(
        "--no-realtime-scale",
        dest="realtime_scale",
        action="store_false",
        help="skip the resume among others' events and the herd after a gateway restart",
    )
    add("--no-realtime", dest="realtime", action="store_false", help="skip the realtime section")
    add(
        "--cluster",
        action="store_true",
        help="also measure the status change at 32 in flight and one press at a time on this machine's RabbitMQ "
        "and on a 3-node cluster through HAProxy (tests/support/cluster.py; needs root and haproxy), alternating "
        "(bench.replication)",
    )
    add("--cluster-rounds", type=int, default=3, help="--cluster: runs on each broker, alternating (default 3)")
    add(
        "--cluster-requests",
        type=int,
        default=1000,
        help="--cluster: measured status changes at 32 in flight per run (default 1000)",
    )
    add(
        "--cluster-idle-requests",
        type=int,
        default=300,
        help="--cluster: measured status changes one at a time per run (default 300)",
    )
    add("--warmup", type=int, default=100, help="unmeasured presses first, per system and per button (default 100)")
    add("--event-timeout", type=float, default=60, help="max wait for missing events, s")
    add("--request-timeout", type=float, default=30, help="client timeout per request, s")
    add("--timeout", type=float, help="the whole run's time limit, s (default 900; 1800 with --cluster)")
    add("--json", type=Path, help="also write the figures as JSON to this file")
    add("--keep-logs", action="store_true", help="keep the processes' logs also after a clean run")
    args = parser.parse_args()
    if (
        min(
            args.requests,
            args.button_requests,
            args.concurrency,
            args.idle_requests,
            args.growth_requests,
            args.bulk_presses,
            args.campaign_leads,
        )
        < 1
        or args.warmup < 0
    ):
        parser.error(
            "--requests, --button-requests, --concurrency, --idle-requests, --growth-requests, "
            "--bulk-presses and --campaign-leads must be >= 1, --warmup >= 0"
        )
    if args.realtime and min(args.realtime_subscribers, args.realtime_presses, args.realtime_replay) < 1:
        parser.error("--realtime-subscribers, --realtime-presses and --realtime-replay must be >= 1")
    scale = (args.realtime_own, args.realtime_herd_screens, args.realtime_herd_orgs, args.realtime_herd_events)
    if args.realtime and args.realtime_scale and min(scale) < 1:
        parser.error(
            "--realtime-own, --realtime-herd-screens, --realtime-herd-orgs and --realtime-herd-events must be >= 1"
        )
    if min(args.realtime_others, args.realtime_herd_others) < 0:
        parser.error("--realtime-others and --realtime-herd-others must be >= 0")
    if args.cluster and min(args.cluster_rounds, args.cluster_requests, args.cluster_idle_requests) < 1:
        parser.error("--cluster-rounds, --cluster-requests and --cluster-idle-requests must be >= 1")
    if args.timeout is None:
        args.timeout = 1800.0 if args.cluster else 900.0
    return args
