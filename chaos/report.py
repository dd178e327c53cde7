"""The table of a run, as text (printed, and written next to its JSON)."""

import os
import platform
from typing import Any

COLUMNS = (
    "presses",
    "via broker",
    "accepted",
    "refused",
    "failed",
    "unresolved",
    "applied",
    "lost",
    "duplicated",
    "unexpected",
    "events missing",
    "events doubled",
    "dup copies",
    "failovers",
    "p50 s",
    "max s",
)


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        with open("/proc/meminfo") as info:
            memory = f"{int(info.readline().split()[1]) / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        memory = "?"
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def _table(header: list[str], rows: list[list[Any]], left: tuple[int, ...] = (0,)) -> list[str]:
    """Columns right-aligned but those in `left`."""
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False))
        ).rstrip()

    return [line(cells[0]), "  ".join("-" * w for w in widths), *(line(r) for r in cells[1:])]


def _cluster_detail(fault: dict[str, Any]) -> str:
    if "queue" in fault:
        return (
            f"{fault['node']} (leader of {fault['queue']} and {fault['led'] - 1} more queues) down {fault['down']} s, "
            f"back in the cluster {fault['back']} s after its SIGKILL"
        )
    if "held" in fault:
        paused = "never paused" if fault["paused after"] is None else f"paused after {fault['paused after']} s"
        return f"{fault['node']} cut off {fault['held']} s ({paused}), back {fault['back']} s after the heal"
    return ", ".join(f"{node} {took} s" for node, took in zip(fault["nodes"], fault["each"], strict=False))


def _cluster(cluster: dict[str, Any]) -> list[str]:
    """The cluster, its queues' members (checked once) and its faults, each with what it did."""
    found = cluster["members"]
    short = found.get("short", {})
    if "error" in found:
        members = f"queue members: not read ({found['error']})"
    else:
        streams = found["streams"]
        members = (
            f"queue members: {found['quorum']} quorum queues and {len(streams)} stream ({', '.join(streams)}): "
            + (
                "; ".join(f"{q} on {len(m)} nodes" for q, m in short.items())
                if short
                else f"each on all {found['nodes']} nodes: ok"
            )
        )
    out = [
        f"cluster: {len(cluster['nodes'])} RabbitMQ nodes ({', '.join(cluster['nodes'])}) behind HAProxy, "
        "pause_minority; every process's AMQP_URL through HAProxy",
        members,
        f"classic queues (one node each, not replicated): {', '.join(found.get('classic', [])) or 'none'}",
        "",
    ]
    rows = []
    for kind, count in cluster["faults"].items():
        done = [f for f in cluster["done"] if f["fault"] == kind]
        rows.append(
            [
                kind,
                count,
                ", ".join(f"{f['at']:.1f}" for f in done),
                ", ".join(f"{f['took']:.1f}" for f in done),
                "; ".join(_cluster_detail(f) for f in done),
            ]
        )
    for error in cluster["errors"]:
        rows.append([error.split(":", 1)[0], "failed", "", "", error.split(":", 1)[-1].strip()[:200]])
    header = ["cluster fault", "count", "at s", "took s", "what"]
    out += _table(header, rows, left=(0, 4)) if rows else ["cluster faults: none"]
    return out


def render(run: dict[str, Any]) -> str:
    result, m = run["result"], run["machine"]
    out = [
        f"chaos run {run['started']}: {run['seconds']:g} s of load at {run['rate']:g} presses/s, "
        f"seed {run['seed']}, {run['instances']} instances of each service, 2 gateways"
        + (f", a RabbitMQ cluster of {len(run['cluster']['nodes'])} nodes" if run.get("cluster") else ""),
        f"machine: {m['cpus']} CPU ({m['cpu']}), {m['memory']}, Python {m['python']}, {m['system']}, {run['versions']}",
        "faults exercised: " + (", ".join(f"{k} x{v}" for k, v in run["faults"].items()) or "none"),
        *(f"faults skipped: {k}: {why}" for k, why in run["skipped"].items()),
        "",
    ]
    if run.get("cluster"):
        out += [*_cluster(run["cluster"]), ""]
    rows = [[kind, *(counts.get(c, 0) for c in COLUMNS)] for kind, counts in result["kinds"].items()]
    rows.append(["total", *(result["total"].get(c, 0) for c in COLUMNS)])
    out += _table(["press", *COLUMNS], rows)
    events = result["events"]
    out += [
        "",
        f"event log: {events['in log']} records of the organisation, {events['distinct']} distinct events, "
        f"{events['republished copies (same id)']} republished copies (same id, deduped by readers)",
    ]
    out += _table(
        ["websocket client", "resumes", "expected", "received", "missing", "doubled", "reloads"],
        [
            [
                name,
                "-" if f["resumes"] is None else f["resumes"],
                f["expected"],
                f["received"],
                f["missing"],
                f["doubled"],
                f["reloads"],
            ]
            for name, f in result["screens"].items()
        ],
    )
    unexpected = result["unexpected"]
    out += [
        "",
        "unexpected effects (no press asked for them): "
        + (", ".join(f"{k} {len(v)}" for k, v in unexpected.items()) or "none"),
    ]
    flight = result["in_flight"]
    out += [
        "left in flight: " + ", ".join(f"{k} {v}" for k, v in flight.items()),
        "outbox rows per schema: " + ", ".join(f"{k} {v}" for k, v in result["outbox"].items()),
        "queue depths (non-zero): " + (", ".join(f"{k} {v}" for k, v in result["queues"].items()) or "none"),
        "parked: "
        + (", ".join(f"{p['service']} {p['message_id']}: {p['reason']}" for p in result["parked"]) or "none"),
    ]
    if run.get("driver_errors"):
        out.append("driver errors: " + ", ".join(f"{k} x{v}" for k, v in run["driver_errors"].items()))
    if run["exits"]:
        out.append("processes that exited by themselves (restarted): " + ", ".join(run["exits"]))
    for verdict, lines in result["examples"].items():
        out += ["", f"{verdict}:", *(f"  {line}" for line in lines)]
    out += [
        "",
        "PASS: lost = duplicated = unexpected = 0, nothing left in flight"
        + (", every cluster fault done, every quorum queue and stream on every node" if run.get("cluster") else "")
        if result["ok"]
        else "FAIL: " + "; ".join(result["failures"]),
    ]
    return "\n".join(out)
