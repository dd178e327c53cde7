"""`make bench --cluster`'s pure parts (bench/replication.py), on made-up figures: the order of the runs, one run's
figures out of bench.levels' answer, the medians and ratios, the queues listed on the cluster, the printed block."""

import argparse
from typing import Any

from bench import replication


def level(rps: float, p50: float, p95: float, ws_p50: float, errors: int = 0, missing: int = 0) -> dict[str, Any]:
    requests = 100
    return {
        "http": {
            "requests": requests,
            "errors": errors,
            "throughput_rps": rps,
            "latency_ms": {"p50": p50, "p95": p95, "p99": None},
        },
        "events": {"missing": missing, "latency_ms": {"p50": ws_p50, "p95": None, "p99": None}},
        "db_changed": requests - errors,
    }


def run(round_: int, target: str, rps: float, p50: float, idle_p50: float) -> dict[str, Any]:
    measured = {1: level(1000 / idle_p50, idle_p50, idle_p50 + 2, idle_p50 + 1), 32: level(rps, p50, p50 * 2, p50 + 3)}
    return {
        "round": round_,
        "target": target,
        "loadavg_1m": 0.5,
        "figures": replication.figures(measured),
        "problems": replication.problems(measured),
        "queues": None,
    }


def test_single_and_cluster_alternate_in_each_round() -> None:
    assert replication.schedule(3) == [
        (1, "single"),
        (1, "cluster"),
        (2, "single"),
        (2, "cluster"),
        (3, "single"),
        (3, "cluster"),
    ]


def test_the_plan_is_one_at_a_time_then_32_in_flight_with_the_levels_warm_up() -> None:
    args = argparse.Namespace(cluster_idle_requests=300, cluster_requests=1000)
    assert replication.plan(args) == [(1, 20, 300), (32, 64, 1000)]


def test_a_runs_figures_and_its_problems() -> None:
    measured = {1: level(100, 9.0, 12.0, 10.0), 32: level(150, 200.0, 300.0, 205.0, errors=2, missing=1)}
    assert replication.figures(measured) == {
        "rps": 150,
        "p50": 200.0,
        "p95": 300.0,
        "ws_p50": 205.0,
        "idle_p50": 9.0,
        "idle_p95": 12.0,
        "idle_ws_p50": 10.0,
    }
    assert replication.problems(measured) == 2 + 1 + 2  # errors, missing events, changes not in the database


def test_medians_per_broker_and_the_cluster_over_the_single_node() -> None:
    runs = [
        run(1, "single", 150, 200.0, 10.0),
        run(1, "cluster", 90, 330.0, 14.0),
        run(2, "single", 120, 260.0, 11.0),
        run(2, "cluster", 60, 500.0, 16.0),
        run(3, "single", 160, 190.0, 9.0),
        run(3, "cluster", 100, 300.0, 13.0),
    ]
    summary = replication.summarise(runs)
    single, cluster = summary["median"]["single"], summary["median"]["cluster"]
    assert (single["rps"], single["p50"], single["idle_p50"]) == (150, 200.0, 10.0)
    assert (cluster["rps"], cluster["p50"], cluster["idle_p50"]) == (90, 330.0, 14.0)
    ratios = summary["cluster_over_single"]
    assert (ratios["throughput"], ratios["p50"], ratios["idle_p50"]) == (0.6, 1.65, 1.4)
    assert summary["cluster_minus_single_ms"]["idle_p50"] == 4.0


def test_a_figure_missing_in_every_run_gives_no_ratio() -> None:
    runs = [run(1, "single", 150, 200.0, 10.0), run(1, "cluster", 90, 330.0, 14.0)]
    for r in runs:
        r["figures"]["ws_p50"] = None
    summary = replication.summarise(runs)
    assert summary["median"]["cluster"]["ws_p50"] is None
    assert summary["cluster_over_single"]["throughput"] == 0.6


def test_the_queues_listed_on_the_cluster() -> None:
    nodes = ["rabbit@10.77.1.1", "rabbit@10.77.1.2", "rabbit@10.77.1.3"]
    rows = [
        {"name": "leads.commands", "type": "quorum", "leader": nodes[0], "members": nodes},
        {"name": "leads.parked", "type": "quorum", "leader": nodes[1], "members": nodes},
        {"name": "events.log", "type": "stream", "leader": nodes[2], "members": nodes},
        {"name": "amq.gen-reply", "type": "classic", "leader": nodes[0], "members": ""},
    ]
    assert replication.queue_summary(rows) == {
        "by_type": {"classic": 1, "quorum": 2, "stream": 1},
        "replicated": 3,
        "members": {"3": 3},
        "leaders": 3,
    }


def test_the_block_and_failure() -> None:
    runs = [run(1, "single", 150, 200.0, 10.0), run(1, "cluster", 90, 330.0, 14.0)]
    runs[1]["queues"] = {"by_type": {"quorum": 2, "stream": 1}, "replicated": 3, "members": {"3": 3}, "leaders": 2}
    result = {
        "rounds": 1,
        "in_flight": 32,
        "requests": 100,
        "idle_requests": 100,
        "warmup": {"1": 20, "32": 64},
        "cluster": {"nodes": 3, "haproxy_port": 40000, "start_s": 31.0},
        "runs": runs,
        **replication.summarise(runs),
    }
    text = "\n".join(replication.render(result))
    assert "cluster / single (medians): throughput at 32 in flight 0.60x, p50 1.65x" in text
    assert "HTTP p50 1.40x (+4.0 ms: 14.0 vs 10.0 ms)" in text
    assert "2 quorum, 1 stream queues; the 3 replicated ones (quorum, stream): 3 with 3 members" in text
    assert replication.render(None) == []
    assert not replication.failed(result) and not replication.failed(None)
    runs[1]["problems"] = 1
    assert replication.failed(result)
