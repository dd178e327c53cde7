"""The goals of issues 8 and 19, each with the figure this run measured, its target and whether it was met.

`met` is True or False, or None when the run did not measure it (e.g. `--no-growth`, `--no-realtime`).
"""

from typing import Any

MB = 1_000_000  # the goal's 150 MB, in bytes
RSS_LIMIT_MB = 150
Goal = dict[str, Any]


def _goal(name: str, figure: str, value: float | None, target: str, met: bool | None) -> Goal:
    return {"goal": name, "figure": figure, "value": value, "target": target, "met": None if value is None else met}


def _ms(value: float | None, signed: bool = False) -> str:
    return "-" if value is None else (f"{value:+.1f} ms" if signed else f"{value:.1f} ms")


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def throughput(levels: dict[str, Any]) -> Goal:
    r = levels.get("32", {}).get("ratios", {}).get("throughput_pipeline_over_baseline")
    met = r is not None and r >= 0.5
    floor = "" if r is None or met else (" (floor met)" if r >= 0.4 else " (below the floor)")
    return _goal(
        "1. status change req/s at 32 in flight, pipeline / baseline",
        "-" if r is None else f"{r:.2f}x{floor}",
        r,
        ">= 0.50x (floor 0.40x)",
        met,
    )


def idle(levels: dict[str, Any]) -> list[Goal]:
    row = levels.get("1")
    http = base = ws = None
    if row:
        http, base, ws = (row[k]["latency_ms"]["p50"] for k in ("pipeline", "baseline", "events"))
    d_http, d_ws = _diff(http, base), _diff(ws, http)
    return [
        _goal(
            "2a. one press at a time: pipeline HTTP p50 - baseline p50",
            f"{_ms(d_http, True)} ({_ms(http)} vs {_ms(base)})",
            d_http,
            "<= +5 ms",
            d_http is not None and d_http <= 5,
        ),
        _goal(
            "2b. one press at a time: press -> websocket p50 - HTTP p50",
            f"{_ms(d_ws, True)} ({_ms(ws)} vs {_ms(http)})",
            d_ws,
            "<= +2 ms",
            d_ws is not None and d_ws <= 2,
        ),
    ]


def sms(result: dict[str, Any]) -> Goal:
    s, p = result["buttons"]["send_sms"]["http"]["throughput_rps"], result["pipeline"]["throughput_rps"]
    r = s / p if p else None
    return _goal(
        f"3. send-sms req/s / status change req/s, {result['concurrency']} in flight",
        "-" if r is None else f"{r:.2f}x ({s:.1f} vs {p:.1f} req/s)",
        r,
        ">= 0.60x",
        r is not None and r >= 0.6,
    )


def bulk(b: dict[str, Any]) -> Goal:
    v = b["http_median_ms"]
    return _goal(
        f"4. bulk change of {b['size']} leads, HTTP median of {b['presses']}",
        _ms(v),
        v,
        "<= 300 ms",
        v is not None and v <= 300 and b["presses"] == len(b["http_ms"]),
    )


def memory(rss_kib: dict[str, int | None]) -> Goal:
    known = {k: v * 1024 / MB for k, v in rss_kib.items() if v is not None}
    top = max(known, key=known.__getitem__) if known else None
    value = known[top] if top else None
    return _goal(
        "5. memory: VmRSS of each process after the run, largest",
        "-" if top is None else f"{value:.1f} MB ({top})",
        value,
        f"< {RSS_LIMIT_MB} MB each",
        value is not None and value < RSS_LIMIT_MB and len(known) == len(rss_kib),
    )


def growth(levels: dict[str, Any]) -> Goal:
    row = levels.get("128")
    errors = None if row is None else row["pipeline"]["errors"] + row["baseline"]["errors"] + row["events"]["missing"]
    shown = "/".join(c for c in ("1", "8", "32", "128") if c in levels)
    return _goal(
        f"6. growth table (in flight {shown}): errors + missing events at 128",
        "-" if errors is None else str(errors),
        errors,
        "0",
        errors == 0,
    )


def floor_throughput(levels: dict[str, Any]) -> Goal:
    r = levels.get("32", {}).get("ratios", {}).get("throughput_pipeline_over_floor")
    return _goal(
        "7. status change req/s at 32 in flight, pipeline / floor",
        "-" if r is None else f"{r:.2f}x",
        r,
        ">= 1.00x",
        r is not None and r >= 1.0,
    )


def floor_idle(levels: dict[str, Any]) -> Goal:
    row = levels.get("1") or {}
    http, floor = ((row.get(k) or {}).get("latency_ms", {}).get("p50") for k in ("pipeline", "floor"))
    d = _diff(http, floor)
    return _goal(
        "8. one press at a time: pipeline HTTP p50 - floor p50",
        f"{_ms(d, True)} ({_ms(http)} vs {_ms(floor)})",
        d,
        "<= +1 ms",
        d is not None and d <= 1,
    )


def realtime_scale(realtime: dict[str, Any] | None) -> list[Goal]:
    """From the realtime section's resume at scale and replay figures (None where that section did not run)."""
    live = realtime or {}
    scale, replay = live.get("scale") or {}, live.get("replay") or {}
    resume, rate = scale.get("resume_ms"), replay.get("events_per_s")
    herd = scale.get("herd") or {}
    current, once = herd.get("all_current_s"), herd.get("missing") == 0 and herd.get("duplicated") == 0
    shown = "-" if current is None else f"{current:.2f} s"
    return [
        _goal(
            "9a. resume after 100,000 other events: hello -> last of 1,000 own events",
            _ms(resume),
            resume,
            "<= 300 ms",
            resume is not None and resume <= 300,
        ),
        _goal(
            "9b. own events replayed per second",
            "-" if rate is None else f"{rate:,.0f}/s",
            rate,
            ">= 20,000/s",
            rate is not None and rate >= 20_000,
        ),
        {  # no target for the time: met is every event once (measured even when not every screen got current)
            **_goal(
                "9c. 200 screens of 20 organisations resuming after a gateway restart: time to all current",
                f"{shown} ({herd.get('missing')} missing, {herd.get('duplicated')} duplicated)" if herd else "-",
                current,
                "every event once",
                once,
            ),
            "met": once if herd else None,
        },
    ]


def evaluate(result: dict[str, Any]) -> list[Goal]:
    levels = result["levels"]
    return [
        throughput(levels),
        *idle(levels),
        sms(result),
        bulk(result["bulk"]),
        memory(result["memory"]["rss_kib"]),
        growth(levels),
        floor_throughput(levels),
        floor_idle(levels),
        *realtime_scale(result.get("realtime")),
    ]


def render(goals: list[Goal]) -> list[str]:
    width, figure, target = (max(len(g[k]) for g in goals) for k in ("goal", "figure", "target"))
    word = {True: "met", False: "NOT MET", None: "not measured"}
    return [
        "",
        "Goals (issues 8 and 19), figures from this run:",
        *(
            f"  {g['goal']:<{width}}  {g['figure']:<{figure}}  target {g['target']:<{target}}  {word[g['met']]}"
            for g in goals
        ),
    ]
