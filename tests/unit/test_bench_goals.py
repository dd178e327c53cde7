"""`make bench`'s goals of issue 19 (bench/goals.py), on figures made up here: met, not met, not measured."""

from typing import Any

from bench import goals, levels, report


def http(rps: float, p50: float | None, errors: int = 0) -> dict[str, Any]:
    return {"requests": 100, "errors": errors, "throughput_rps": rps, "latency_ms": {"p50": p50, "p99": None}}


def row(pipeline: dict[str, Any], floor: dict[str, Any], changed: int = 100) -> dict[str, Any]:
    baseline = http(4000, 1.4)
    return {
        "pipeline": pipeline,
        "baseline": baseline,
        "floor": floor,
        "events": {"missing": 0, "latency_ms": {"p50": None}},
        "requests": 100,
        "db_changed": {"pipeline": 100, "baseline": 100, "floor": changed},
        "ratios": report.ratios(pipeline, baseline, floor),
    }


def by_number(found: list[goals.Goal]) -> dict[str, goals.Goal]:
    return {g["goal"].split(" ", 1)[0]: g for g in found}


def test_pipeline_over_floor_at_32_in_flight() -> None:
    met = goals.floor_throughput({"32": row(http(1100, 20), http(1000, 25))})
    short = goals.floor_throughput({"32": row(http(990, 20), http(1000, 25))})
    absent = goals.floor_throughput({"1": row(http(200, 4), http(300, 3))})

    assert (met["value"], met["met"], met["figure"]) == (1.1, True, "1.10x")
    assert (round(short["value"], 2), short["met"]) == (0.99, False)
    assert (absent["value"], absent["met"]) == (None, None)


def test_idle_p50_over_the_floor() -> None:
    met = goals.floor_idle({"1": row(http(200, 4.0), http(300, 3.0))})
    over = goals.floor_idle({"1": row(http(200, 4.5), http(300, 3.0))})
    absent = goals.floor_idle({"32": row(http(1000, 20), http(1000, 20))})

    assert (met["value"], met["met"]) == (1.0, True)  # the bound itself is met
    assert (over["value"], over["met"]) == (1.5, False)
    assert over["figure"] == "+1.5 ms (4.5 ms vs 3.0 ms)"
    assert (absent["value"], absent["met"]) == (None, None)


def test_realtime_at_scale_met_and_not_met() -> None:
    herd = {"all_current_s": 2.5, "missing": 0, "duplicated": 0}
    live = {"replay": {"events_per_s": 15_000.0}, "scale": {"resume_ms": 250.0, "herd": herd}}
    found = by_number(goals.realtime_scale(live))

    assert (found["9a."]["value"], found["9a."]["met"]) == (250.0, True)
    assert (found["9b."]["value"], found["9b."]["met"]) == (15_000.0, False)
    assert (found["9c."]["value"], found["9c."]["met"]) == (2.5, True)

    live["scale"] = {"resume_ms": 301.0, "herd": {"all_current_s": None, "missing": 3, "duplicated": 0}}
    found = by_number(goals.realtime_scale(live))
    assert found["9a."]["met"] is False
    # Screens that never got current are a failure, not a figure missing.
    assert (found["9c."]["value"], found["9c."]["met"]) == (None, False)
    herd = {"all_current_s": 1.0, "missing": 0, "duplicated": 2}
    assert by_number(goals.realtime_scale({"scale": {"herd": herd}}))["9c."]["met"] is False


def test_realtime_at_scale_not_measured() -> None:
    for live in (None, {}, {"replay": {}, "fanout": {}}, {"scale": None}):
        found = goals.realtime_scale(live)
        assert [g["met"] for g in found] == [None, None, None]
        assert [g["value"] for g in found] == [None, None, None]


def test_new_goals_come_after_the_old_ones() -> None:
    result = {
        "concurrency": 32,
        "levels": {"1": row(http(200, 4.0), http(300, 3.5)), "32": row(http(1000, 20), http(900, 25))},
        "pipeline": http(1000, 20),
        "buttons": {"send_sms": {"http": http(600, 30)}},
        "bulk": {"size": 1000, "presses": 1, "http_ms": [200.0], "http_median_ms": 200.0},
        "memory": {"rss_kib": {"gateway": 100_000}},
        "realtime": None,
    }
    found = goals.evaluate(result)
    numbers = [g["goal"].split(" ", 1)[0] for g in found]

    assert numbers == ["1.", "2a.", "2b.", "3.", "4.", "5.", "6.", "7.", "8.", "9a.", "9b.", "9c."]
    assert by_number(found)["7."]["met"] is True
    assert "Goals (issues 8 and 19), figures from this run:" in goals.render(found)


def test_a_floor_error_or_unchanged_lead_fails_the_levels() -> None:
    assert not levels.failed({"1": row(http(200, 4), http(300, 3))})
    assert levels.failed({"1": row(http(200, 4), http(300, 3, errors=1))})
    assert levels.failed({"1": row(http(200, 4), http(300, 3), changed=99)})
