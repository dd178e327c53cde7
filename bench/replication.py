"""What replication costs (`--cluster`): the status change on one RabbitMQ node and on a three-node cluster.

The same stack (`bench.processes.start_pipeline`: gateway, leads, bookings, sms, proposals, documents, the
Twilio sandbox) on the same local PostgreSQL, once with AMQP_URL on this machine's broker ("single") and once on
the cluster of tests/support/cluster.py through its HAProxy ("cluster"); each run with a database and a vhost of
its own, made for it and dropped after it. Each run measures what `bench.levels` measures for the pipeline (the
same code): `--cluster-idle-requests` status changes one press at a time and `--cluster-requests` at 32 in
flight, each after warm-up presses that are not measured, on fresh leads. The two alternate for
`--cluster-rounds` rounds (single, cluster, single, cluster, ...), so that the drift of a busy machine hits both
alike; the block gives each run, the medians and the cluster / single ratios of the medians.

The cluster is started once, after every other section (its three Erlang VMs stay up, idle, through the single
node's runs as well) and stopped in a `finally`. What replicates there: every quorum queue (commands, delays,
parked) and the event log (a stream) have a member on each node, checked on every cluster run.
"""

import argparse
import asyncio
import os
import statistics
import time
from collections import Counter
from contextlib import suppress
from pathlib import Path
from typing import Any

from bench import levels
from bench.processes import start_pipeline
from tests.support import cluster as cluster_mod
from tests.support import infra as infra_mod

IN_FLIGHT = 32
TARGETS = ("single", "cluster")
# Each run's figures: key -> (level, part of the level, figure)
FIGURES = {
    "rps": ("32", "http", "throughput_rps"),
    "p50": ("32", "http", "p50"),
    "p95": ("32", "http", "p95"),
    "ws_p50": ("32", "events", "p50"),
    "idle_p50": ("1", "http", "p50"),
    "idle_p95": ("1", "http", "p95"),
    "idle_ws_p50": ("1", "events", "p50"),
}


def schedule(rounds: int) -> list[tuple[int, str]]:
    """(round, target) in the order they run: single then cluster in each round."""
    return [(r, target) for r in range(1, rounds + 1) for target in TARGETS]


def plan(args: argparse.Namespace) -> list[tuple[int, int, int]]:  # (a levels.Plan)
    return [
        (1, levels.warmup(1), args.cluster_idle_requests),
        (IN_FLIGHT, levels.warmup(IN_FLIGHT), args.cluster_requests),
    ]


def figures(measured: dict[int, dict[str, Any]]) -> dict[str, float | None]:
    """The figures of one run out of `levels.pipeline`'s answer (keyed by concurrency)."""
    out: dict[str, float | None] = {}
    for key, (level, part, name) in FIGURES.items():
        source = measured[int(level)][part]
        out[key] = source[name] if name == "throughput_rps" else source["latency_ms"][name]
    return out


def problems(measured: dict[int, dict[str, Any]]) -> int:
    """Errors, missing events and changes not found in the database, over both levels of one run."""
    return sum(
        m["http"]["errors"] + m["events"]["missing"] + (m["http"]["requests"] - m["db_changed"])
        for m in measured.values()
    )


def queue_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What `Cluster.queues` lists of a vhost: queues by type, and the members of the replicated ones."""
    replicated = [r for r in rows if r.get("type") in ("quorum", "stream")]
    members = Counter(len(r["members"]) if isinstance(r.get("members"), list) else 0 for r in replicated)
    return {
        "by_type": dict(sorted(Counter(str(r.get("type")) for r in rows).items())),
        "replicated": len(replicated),
        "members": {str(k): v for k, v in sorted(members.items())},  # member count -> queues
        "leaders": len({str(r.get("leader")) for r in replicated}),
    }


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per target over its rounds, and the cluster's medians over the single node's."""
    medians = {
        target: {key: _median([r["figures"][key] for r in runs if r["target"] == target]) for key in FIGURES}
        for target in TARGETS
    }
    s, c = medians["single"], medians["cluster"]
    return {
        "median": medians,
        "cluster_over_single": {
            "throughput": _ratio(c["rps"], s["rps"]),
            "p50": _ratio(c["p50"], s["p50"]),
            "p95": _ratio(c["p95"], s["p95"]),
            "idle_p50": _ratio(c["idle_p50"], s["idle_p50"]),
        },
        "cluster_minus_single_ms": {key: _diff(c[key], s[key]) for key in ("idle_p50", "idle_ws_p50", "p50")},
    }


async def _run(
    round_: int, target: str, cluster: cluster_mod.Cluster | None, log_dir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """One run: a fresh database and vhost, the stack on them, the two levels, everything stopped and dropped."""
    if cluster is None:
        infra = await infra_mod.provision(prefix="crm_bench")  # a database, and a vhost on the local broker
    else:
        infra = await infra_mod.provision_on(cluster, prefix="crm_bench")  # a database, a vhost on the cluster
    try:
        directory = log_dir / f"replication-{round_}-{target}"
        directory.mkdir(parents=True, exist_ok=True)
        load = os.getloadavg()[0]
        started = time.monotonic()
        stack = await start_pipeline(infra, directory)
        try:
            measured = await levels.pipeline(stack.url, infra.database_url, plan(args), args)
        finally:
            await asyncio.to_thread(stack.stop_all)
        queues = queue_summary(await asyncio.to_thread(cluster.queues, infra._vhost)) if cluster is not None else None
        return {
            "round": round_,
            "target": target,
            "loadavg_1m": load,
            "run_s": time.monotonic() - started,
            "figures": figures(measured),
            "problems": problems(measured),
            "levels": {str(c): m for c, m in measured.items()},
            "queues": queues,
        }
    finally:
        # (the vhost too, so that a later run does not share the nodes with this one's idle queues)
        await (infra_mod.release(infra) if cluster is None else infra_mod.release_on(cluster, infra))


async def measure(log_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    why = cluster_mod.available()
    if why is not None:
        raise RuntimeError(f"--cluster: no cluster here: {why}")
    cluster = cluster_mod.Cluster()
    started = time.monotonic()
    # Started in a thread that a cancellation (--timeout, Ctrl-C) cannot stop: it is waited for, then stopped.
    starting = asyncio.ensure_future(asyncio.to_thread(cluster.start))
    try:
        await asyncio.shield(starting)
        up_s = time.monotonic() - started
        runs = [
            await _run(round_, target, cluster if target == "cluster" else None, log_dir, args)
            for round_, target in schedule(args.cluster_rounds)
        ]
    finally:
        with suppress(BaseException):
            await starting  # (its own failure already stopped what it started)
        await asyncio.to_thread(cluster.stop)
    return {
        "rounds": args.cluster_rounds,
        "in_flight": IN_FLIGHT,
        "requests": args.cluster_requests,
        "idle_requests": args.cluster_idle_requests,
        "warmup": {str(c): w for c, w, _ in plan(args)},
        "cluster": {"nodes": cluster.size, "haproxy_port": cluster.port, "start_s": up_s},
        "runs": runs,
        **summarise(runs),
    }


def failed(result: dict[str, Any] | None) -> bool:
    return result is not None and any(r["problems"] for r in result["runs"])


# --- the printed block ---


def _f(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


HEADER = (
    f"{'round':>5}  {'broker':<8}{'load':>6} | {'32 in flight: req/s':>19}{'p50':>7}{'p95':>7}{'ws p50':>8} | "
    f"{'one at a time: p50':>18}{'p95':>7}{'ws p50':>8} |{'err':>4}"
)


def _row(label: str, target: str, f: dict[str, float | None], load: float | None, err: int | None) -> str:
    return (
        f"{label:>5}  {target:<8}{_f(load, '.2f'):>6} | {_f(f['rps']):>19}{_f(f['p50']):>7}{_f(f['p95']):>7}"
        f"{_f(f['ws_p50']):>8} | {_f(f['idle_p50']):>18}{_f(f['idle_p95']):>7}{_f(f['idle_ws_p50']):>8} |"
        f"{'' if err is None else err:>4}"
    )


def _queues_line(runs: list[dict[str, Any]]) -> str:
    found = [r["queues"] for r in runs if r.get("queues")]
    if not found:
        return "on the cluster: its queues were not listed"
    q = found[-1]
    kinds = ", ".join(f"{n} {kind}" for kind, n in q["by_type"].items())
    members = ", ".join(f"{n} with {m} members" for m, n in q["members"].items())
    return (
        f"on the cluster (each run's vhost, listed after its run): {kinds} queues; the {q['replicated']} "
        f"replicated ones (quorum, stream): {members}, led by {q['leaders']} distinct nodes"
    )


def render(result: dict[str, Any] | None) -> list[str]:
    if result is None:
        return []
    c, m = result["cluster"], result["median"]
    ratio, diff = result["cluster_over_single"], result["cluster_minus_single_ms"]
    warm, flight = result["warmup"], result["in_flight"]
    rounds = f"{result['rounds']} round{'' if result['rounds'] == 1 else 's'}"
    lines = [
        "",
        f"replication (--cluster): the status change on one RabbitMQ node (this machine's) and on a "
        f"{c['nodes']}-node cluster through HAProxy (127.0.0.1:{c['haproxy_port']}; nodes in network namespaces, "
        f"one Erlang scheduler each; up in {c['start_s']:.0f} s)",
        f"the same stack and PostgreSQL, a fresh database and vhost per run; {rounds}, single then cluster in "
        f"each; per run {result['requests']} presses at {flight} in flight (warm-up {warm[str(flight)]}) and "
        f"{result['idle_requests']} one at a time (warm-up {warm['1']}), on fresh leads (bench.levels)",
        "(latencies in ms, HTTP send -> answer; ws = press -> websocket event; load = 1-minute load average at "
        "the run's start; err = errors + missing events + changes not in the database)",
        "",
        HEADER,
        *(_row(str(r["round"]), r["target"], r["figures"], r["loadavg_1m"], r["problems"]) for r in result["runs"]),
        *(_row("med.", target, m[target], None, None) for target in TARGETS),
        "",
        f"cluster / single (medians): throughput at {result['in_flight']} in flight {_f(ratio['throughput'], '.2f')}x, "
        f"p50 {_f(ratio['p50'], '.2f')}x, p95 {_f(ratio['p95'], '.2f')}x; one press at a time: HTTP p50 "
        f"{_f(ratio['idle_p50'], '.2f')}x ({_f(diff['idle_p50'], '+.1f')} ms: {_f(m['cluster']['idle_p50'])} vs "
        f"{_f(m['single']['idle_p50'])} ms), press -> websocket p50 {_f(diff['idle_ws_p50'], '+.1f')} ms",
        _queues_line(result["runs"]),
    ]
    return lines
