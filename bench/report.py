"""Figures from the samples, the machine, and the printed table."""

import math
import os
import platform
from collections import Counter
from typing import Any

from bench import campaign, goals, replication, scaling, tables
from bench.driver import Sample


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of `values` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def spread(values_ms: list[float]) -> dict[str, float | None]:
    return {f"p{p}": percentile(values_ms, p) for p in (50, 95, 99)}


def http_figures(samples: list[Sample]) -> dict[str, Any]:
    """Throughput counts 200 answers only; latencies are those of the 200 answers."""
    ok = [s for s in samples if s.status == 200]
    wall = max(s.done for s in samples) - min(s.sent for s in samples) if samples else 0.0
    return {
        "requests": len(samples),
        "errors": len(samples) - len(ok),
        "error_statuses": dict(Counter(str(s.status) for s in samples if s.status != 200)),
        "wall_s": wall,
        "throughput_rps": len(ok) / wall if wall else 0.0,
        "latency_ms": spread([(s.done - s.sent) * 1000 for s in ok]),
    }


def event_figures(samples: list[Sample], arrivals: dict[str, float], closed: str | None) -> dict[str, Any]:
    """Press -> websocket: from sending the request to the arrival of that lead's event."""
    waits = [(arrivals[s.key] - s.sent) * 1000 for s in samples if s.key in arrivals]
    return {
        "expected": len(samples),
        "arrived": len(waits),
        "missing": len(samples) - len(waits),
        "websocket_closed": closed,
        "latency_ms": spread(waits),
    }


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "nproc": cpus,
        "cpu_model": model,
        "python": platform.python_version(),
        "system": platform.platform(),
        "loadavg": load,
    }


def ratios(
    pipeline: dict[str, Any], baseline: dict[str, Any], floor: dict[str, Any] | None = None
) -> dict[str, float | None]:
    """Pipeline over each peer measured: req/s and p50 (`throughput_pipeline_over_baseline`...)."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    peers = {"baseline": baseline, **({"floor": floor} if floor is not None else {})}
    out: dict[str, float | None] = {}
    for name, peer in peers.items():
        out[f"throughput_pipeline_over_{name}"] = ratio(pipeline["throughput_rps"], peer["throughput_rps"])
        out[f"p50_pipeline_over_{name}"] = ratio(pipeline["latency_ms"]["p50"], peer["latency_ms"]["p50"])
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


HEADER = (
    f"{'HTTP (send -> answer)':<24}{'requests':>9}{'errors':>8}{'wall s':>9}{'req/s':>9}"
    f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
)


def _row(name: str, f: dict[str, Any]) -> str:
    lat = f["latency_ms"]
    return (
        f"{name:<24}{f['requests']:>9}{f['errors']:>8}{f['wall_s']:>9.2f}{f['throughput_rps']:>9.1f}"
        f"{_ms(lat['p50']):>9}{_ms(lat['p95']):>9}{_ms(lat['p99']):>9}"
    )


def _events_line(e: dict[str, Any], label: str = "pipeline press -> websocket event") -> str:
    lat = e["latency_ms"]
    return (
        f"{label}: {e['arrived']}/{e['expected']} events arrived ({e['missing']} missing),"
        f" p50 {_ms(lat['p50'])} ms, p95 {_ms(lat['p95'])} ms, p99 {_ms(lat['p99'])} ms"
        + (f"; websocket {e['websocket_closed']}" if e["websocket_closed"] else "")
    )


def render(result: dict[str, Any]) -> str:
    m, p, b, f, r = (result[k] for k in ("machine", "pipeline", "baseline", "floor", "ratios"))
    lines = [
        f"machine: {m['nproc']} CPUs, {m['cpu_model']}, Python {m['python']}, {m['system']}, "
        f"load average before the run {m['loadavg']}",
        f"run: {result['requests']} status changes per system, concurrency {result['concurrency']}, "
        f"warm-up {result['warmup']} (not measured)",
        "",
        HEADER,
        _row("pipeline", p),
        _row("baseline (no broker)", b),
        _row("floor (broker, bare)", f),
        "",
    ]
    lines += [
        f"{name} errors by status: {s['error_statuses']}"
        for name, s in (("pipeline", p), ("baseline", b), ("floor", f))
        if s["errors"]
    ]
    changed = result["db_changed"]
    lines += [
        _events_line(result["events"]),
        "changed in the database: "
        + ", ".join(f"{name} {changed[name]}/{result['requests']}" for name in ("pipeline", "baseline", "floor")),
        "",
        *_ratio_lines(r),
        "(req/s counts 200 answers per second of wall time; latencies are those of the 200 answers;",
        " floor = the same shape as the pipeline, none of its guarantees: bench.floor, bench.floor_worker)",
    ]
    lines += tables.growth(result["levels"], skipped=not result["growth"]) + _floor_levels(result["levels"])
    lines += _buttons(result["buttons"], result["concurrency"]) + tables.bulk(result["bulk"])
    lines += campaign.render(result.get("campaign"))
    lines += scaling.render(result.get("scaling"), result["concurrency"])
    lines += _realtime(result["realtime"]) + tables.memory(result["memory"])
    lines += replication.render(result.get("replication")) + goals.render(result["goals"])
    return "\n".join(lines)


def _buttons(b: dict[str, Any], concurrency: int) -> list[str]:
    c, s = b["confirm"], b["send_sms"]
    lines = [
        "",
        f"other buttons, same stack (gateway, leads, bookings, sms, Twilio sandbox): {b['requests']} presses "
        f"each, concurrency {concurrency}, warm-up {b['warmup']} (not measured)",
        "",
        HEADER,
        _row("confirm", c["http"]),
        _row("send-sms", s["http"]),
        "",
    ]
    lines += [
        f"{name} errors by status: {f['http']['error_statuses']}"
        for name, f in (("confirm", c), ("send-sms", s))
        if f["http"]["errors"]
    ]
    answers = ", ".join(f"{k} {v}" for k, v in {"sent": 0, "queued": 0, **s["answers"]}.items())
    statuses = ", ".join(f"{k} {v}" for k, v in s["db_statuses"].items()) or "none"
    lines += [
        _events_line(c["events"], "confirm press -> websocket appointments.confirmed"),
        _events_line(s["events"], "send-sms press -> websocket sms.sent"),
        f"send-sms 200 answers by sms.status: {answers}",
        f"in the database: confirmed {c['db_confirmed']}/{b['requests']}; measured SMS by status: {statuses}",
        f"the Twilio sandbox accepted {s['sandbox_messages']} messages for {s['sandbox_expected']} sends "
        f"(warm-up included)",
    ]
    return lines


def _p(spread_ms: dict[str, float | None]) -> str:
    return f"p50 {_ms(spread_ms['p50'])} / p95 {_ms(spread_ms['p95'])} / p99 {_ms(spread_ms['p99'])} ms"


def _realtime(r: dict[str, Any] | None) -> list[str]:
    if r is None:
        return ["", "realtime: skipped (--no-realtime)"]
    f, e, m, p = r["fanout"], r["fanout"]["events"], r["fanout"]["memory"], r["replay"]
    lines = [
        "",
        f"realtime, same stack, one gateway: {e['subscribers']} websockets of one organisation, all on "
        f"leads.status_changed (opened in {f['open_s']:.1f} s); {f['presses']} status changes, concurrency "
        f"{f['concurrency']}, warm-up {f['warmup']} (not measured)",
        "",
        HEADER,
        _row("status change", f["http"]),
        "",
        f"press -> event, all (press, subscriber) pairs: {e['arrived']}/{e['expected']} arrived "
        f"({e['missing']} missing, {e['duplicated']} duplicated), {_p(e['latency_ms'])}",
        f"press -> event at its first subscriber: {_p(e['first_ms'])}; at its last: {_p(e['last_ms'])}",
        f"delivered: {e['frames']} event frames in {e['wall_s']:.2f} s = {e['frames_per_s']:.0f} events/s "
        f"(all subscribers, first press sent -> last arrival)",
    ]
    lines.append(_cpu("CPU during the presses", f))
    if e["closed"]:
        lines.append(f"{e['closed']} websockets closed early, e.g. {e['closed_first']}")
    lines += [
        f"gateway memory: VmRSS {m['rss_before_kib'] / 1024:.1f} MiB before, {m['rss_after_kib'] / 1024:.1f} MiB "
        f"with the sockets open: {m['per_connection_kib']:.1f} KiB per connection",
        f"replay to one reconnecting client: {p['received']}/{p['events']} events ({p['missing']} missing, "
        f"{p['duplicated']} duplicated, {'in order' if p['in_order'] else 'OUT OF ORDER'}, recovered "
        f"{p['recovered']}); hello -> welcome {p['welcome_ms']:.1f} ms, hello -> last event "
        f"{p['replay_s'] * 1000:.0f} ms = {p['events_per_s']:.0f} events/s "
        f"(published beforehand in {p['publish_s']:.1f} s)",
        _cpu("CPU during the replay", p),
    ]
    return lines + _realtime_scale(r.get("scale"))


def _realtime_scale(s: dict[str, Any] | None) -> list[str]:
    if s is None:
        return ["resume among others' events, herd after a gateway restart: skipped (--no-realtime-scale)"]
    a = s["archive"]
    archive = (
        "the gateway keeps no archive (no crm_event_archive_position on /metrics)"
        if a is None
        else f"its archive at {a['position']:.0f} {'after' if a['caught_up'] else 'NOT caught up after'} "
        f"{a['wait_s']:.1f} s"
    )
    lines = [
        f"resume among others' events: {s['own']} own events among {s['others']} of {s['other_orgs']} other "
        f"organisations, the last one its own ({s['records_after']} log positions after the position), published "
        f"in {s['publish_s']:.1f} s; the gateway read {'them all' if s['read_all'] else 'NOT all of them'} "
        f"{s['read_s']:.1f} s later; {archive}",
        f"resumed: {s['received']}/{s['own']} own events ({_once(s)}, recovered {s['recovered']}); hello -> "
        f"welcome {s['welcome_ms']:.1f} ms, hello -> last own event {'' if s['complete'] else 'over '}"
        f"{s['resume_ms']:.1f} ms = {s['own_per_s']:.0f} own events/s{_records_read(s['records_read'])}",
        _cpu("CPU during the resume", s),
    ]
    return lines + _herd(s["herd"])


def _herd(h: dict[str, Any]) -> list[str]:
    current, spread, a = h["all_current_s"], h["current_s"], h["archive"]
    archive = (
        "" if a["at_ready"] is None else f"; its archive at {a['at_ready']:.0f} when ready, {a['at_end']:.0f} after"
    )
    return [
        f"herd after a gateway restart: {h['screens']} screens (a user each) of {h['orgs']} organisations; "
        f"{h['events_per_org']} events per organisation and {h['others']} of others published while it was down "
        f"(in {h['publish_s']:.1f} s; stop -> ready {h['restart_s']:.1f} s), then all resume at once",
        f"ready -> every screen current: {_s(current)} s ({h['current']}/{h['screens']} current; per screen p50 "
        f"{_s(spread['p50'])} / p95 {_s(spread['p95'])} s); {h['received']}/{h['expected']} events ({_once(h)}, "
        f"{h['not_recovered']} of {h['resumes']} resumes not recovered); {h['retries']} closed 1013 and retried, "
        f"{h['reconnects']} other reconnections",
        f"gateway from ready on: CPU {h['cpu_s']['gateway']:.1f} s{archive}{_records_read(h['records_read'])}",
    ]


def _records_read(read: dict[str, float] | None) -> str:
    return "" if read is None else "; records its resumes read: " + ", ".join(f"{k} {v:.0f}" for k, v in read.items())


def _once(f: dict[str, Any]) -> str:
    order = "in order" if f["in_order"] else "OUT OF ORDER"
    return f"{f['missing']} missing, {f['duplicated']} duplicated, {order}"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cpu(label: str, f: dict[str, Any]) -> str:
    per = f["cpu_us_per_frame"]
    return f"{label}: " + ", ".join(
        f"{name} {used:.1f} s ({_ms(per[name])} us per event frame)" for name, used in f["cpu_s"].items()
    )


def buttons_failed(b: dict[str, Any]) -> bool:
    c, s = b["confirm"], b["send_sms"]
    return bool(
        c["http"]["errors"]
        or c["events"]["missing"]
        or s["http"]["errors"]
        or s["events"]["missing"]
        or s["sandbox_messages"] != s["sandbox_expected"]
    )


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ratio_lines(r: dict[str, float | None]) -> list[str]:
    return [
        f"{what} ratio pipeline / {peer}: {_ratio(r.get(f'{key}_pipeline_over_{peer}'))}"
        for peer in ("baseline", "floor")
        for what, key in (("throughput", "throughput"), ("p50 latency", "p50"))
    ]


FLOOR_HEADER = (
    f"{'in flight':>9}{'requests':>9} | {'floor':<8}{'req/s':>8}{'p50':>7}{'p99':>7}{'err':>5} | "
    f"{'pipeline / floor: req/s':>23}{'p50 x':>7}{'p50 +ms':>9}"
)


def _floor_row(c: str, row: dict[str, Any]) -> str:
    p, f, r = row["pipeline"], row["floor"], row["ratios"]
    extra = _diff(p["latency_ms"]["p50"], f["latency_ms"]["p50"])
    return (
        f"{c + ('*' if row['main'] else ' '):>9}{row['requests']:>9} | {'':<8}{f['throughput_rps']:>8.1f}"
        f"{_ms(f['latency_ms']['p50']):>7}{_ms(f['latency_ms']['p99']):>7}{f['errors']:>5} | "
        f"{_ratio(r['throughput_pipeline_over_floor']):>23}{_ratio(r['p50_pipeline_over_floor']):>7}"
        f"{'-' if extra is None else f'{extra:+.1f}':>9}"
    )


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _floor_levels(levels: dict[str, Any]) -> list[str]:
    return [
        "",
        "the floor at the same levels, on fresh leads per level, against the pipeline of the table above",
        "(* = the main measurement; latencies in ms; p50 +ms = pipeline p50 - floor p50)",
        "",
        FLOOR_HEADER,
        *(_floor_row(c, row) for c, row in levels.items()),
    ]
