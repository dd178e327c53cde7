"""The printed growth table, bulk change and memory lines (the figures come from levels, bulk, procfs)."""

from typing import Any


def _ms(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


GROWTH_HEADER = (
    f"{'in flight':>9}{'requests':>9} | {'pipeline':<8}{'req/s':>8}{'p50':>7}{'p99':>7}{'ws p50':>8}"
    f"{'err':>5} | {'baseline':<8}{'req/s':>8}{'p50':>7}{'p99':>7}{'err':>5} | {'ratio req/s':>11}"
    f"{'p50 x':>7}"
)


def _growth_row(c: str, row: dict[str, Any]) -> str:
    p, b, e, r = row["pipeline"], row["baseline"], row["events"], row["ratios"]
    ratio, times = r["throughput_pipeline_over_baseline"], r["p50_pipeline_over_baseline"]
    mark = "*" if row["main"] else " "
    return (
        f"{c + mark:>9}{row['requests']:>9} | {'':<8}{p['throughput_rps']:>8.1f}{_ms(p['latency_ms']['p50']):>7}"
        f"{_ms(p['latency_ms']['p99']):>7}{_ms(e['latency_ms']['p50']):>8}{p['errors'] + e['missing']:>5} | "
        f"{'':<8}{b['throughput_rps']:>8.1f}{_ms(b['latency_ms']['p50']):>7}{_ms(b['latency_ms']['p99']):>7}"
        f"{b['errors']:>5} | {_ms(ratio, '.2f'):>11}{_ms(times):>7}"
    )


def growth(levels: dict[str, Any], skipped: bool) -> list[str]:
    lines = [
        "",
        "status changes by requests in flight, pipeline and baseline, on fresh leads per level",
        "(* = the main measurement above; latencies in ms; ws = press -> websocket event; err = errors, "
        "and for the pipeline missing events too)",
        "",
        GROWTH_HEADER,
        *(_growth_row(c, row) for c, row in levels.items()),
    ]
    if skipped:
        lines.append("(8, 32 and 128 in flight skipped: --no-growth)")
    return lines


def bulk(b: dict[str, Any]) -> list[str]:
    each = ", ".join(f"{v:.0f}" for v in b["http_ms"]) or "-"
    last = b["last_event_median_ms"]
    return [
        "",
        f"bulk change of {b['size']} leads (POST /api/leads/update-status with leadIds), {b['presses']} "
        f"presses one at a time on fresh leads, after {b['warmup']} unmeasured: HTTP median "
        f"{_ms(b['http_median_ms'])} ms (each: {each} ms; answers {', '.join(b['statuses'])}); "
        f"press -> last of its {b['size']} events median {_ms(last)} ms, {b['missing_events']} missing; "
        f"changed in the database {b['db_changed']}/{b['size'] * b['presses']}",
    ]


def memory(m: dict[str, Any]) -> list[str]:
    shown = ", ".join(
        f"{name} {'gone' if kib is None else f'{kib * 1024 / 1e6:.1f}'}" for name, kib in m["rss_kib"].items()
    )
    return ["", f"memory after the run (VmRSS in MB of 10^6 bytes, {m['when']}): {shown}"]
