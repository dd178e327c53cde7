"""The checker: what each press asked for against what the final state shows.

    accepted press (200/201/202 followed to its answer) whose count is below what it asked ─► lost
    any press with more rows / SMS / distinct events than it asked                          ─► duplicated
    a row, an SMS or a lead move that no press asked for                                   ─► unexpected
    outbox rows, parked messages, messages in queues, SMS still queued, presses unanswered ─► in flight

The run passes when lost = duplicated = unexpected = 0, nothing is in flight, no event is missing
or doubled in the log, and every screen got every event of the log once.
"""

from collections import Counter, defaultdict
from typing import Any

from chaos.presses import Press
from chaos.state import State


def _judge(count: int, least: int, most: int, accepted: bool) -> str:
    if count > most:
        return "unexpected" if most == 0 else "duplicated"
    if accepted and count < least:
        return "lost"
    return "ok"


def press_findings(press: Press, state: State, by_command: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    found: dict[str, Any] = {"lost": [], "duplicated": [], "unexpected": [], "events_missing": 0, "events_doubled": 0}
    for i, count in enumerate(press.counts):
        seen = state.counts[(press.seq, i)]
        verdict = _judge(seen, count.minimum, count.want, press.accepted)
        if verdict != "ok":
            found[verdict].append(f"{count.label}: {seen} rows, wanted {count.want}")
    for text in press.texts:
        seen = sum(
            1
            for m in state.texts
            if m["to"] == text.phone and (text.body in m["body"] if text.partial else m["body"] == text.body)
        )
        verdict = _judge(seen, text.want, text.want, press.accepted)
        if verdict != "ok":
            found[verdict].append(f"SMS to {text.phone}: {seen} in the sandbox, wanted {text.want}")
    own = by_command.get(press.message_id, [])
    for type_, want in press.events.items():
        ids = {e["id"] for e in own if e["type"] == type_}
        if press.accepted and len(ids) < want:
            found["events_missing"] += want - len(ids)
        found["events_doubled"] += max(0, len(ids) - want)
    for cause_type, effects in press.follows.items():
        for cause in {e["id"]: e for e in own if e["type"] == cause_type}.values():
            caused = by_command.get(cause["id"], [])
            for type_, (least, most) in effects.items():
                n = len({e["id"] for e in caused if e["type"] == type_})
                if press.accepted and n < least:
                    found["events_missing"] += least - n
                found["events_doubled"] += max(0, n - most)
    return found


def unexpected_effects(presses: list[Press], state: State) -> dict[str, list[str]]:
    claims: dict[str, set[str]] = defaultdict(set)
    for press in presses:
        for what, value in press.claims.items():
            claims[what].add(value)
    confirm_phones = {t.phone for p in presses if p.kind == "confirm_sms" for t in p.texts}
    sms_bodies = claims["sms"]
    deal_events = {e["id"] for e in state.events if e["type"].startswith("proposals.")}
    mine = {p.message_id for p in presses} | deal_events
    rows = state.rows
    found = {
        "leads": [r["claim"] for r in rows["leads"] if r["claim"] not in claims["lead"]],
        "status moves": [r["claim"] for r in rows["status moves"] if r["claim"] not in mine],
        "appointments": [r["claim"] for r in rows["appointments"] if r["claim"] not in claims["appointment"]],
        "sms rows": [
            r["claim"]
            for r in rows["sms"]
            if r["claim"] not in sms_bodies
            and not (r["lead"] in claims["confirm_sms"] and "is confirmed" in r["claim"])
        ],
        "proposals": [r["claim"] for r in rows["proposals"] if r["claim"] not in claims["proposal"]],
        "payments": [r["claim"] for r in rows["payments"] if r["claim"] not in claims["payment"]],
        "contracts": [r["claim"] for r in rows["contracts"] if r["claim"] not in claims["contract"]],
        "refunds": [r["claim"] for r in rows["refunds"] if r["claim"] not in claims["refund"]],
        "templates": [r["claim"] for r in rows["templates"] if r["claim"] not in claims["template"]],
        "campaigns": [r["claim"] for r in rows["campaigns"] if r["claim"] not in claims["campaign"]],
        "documents": [r["claim"] for r in rows["documents"] if r["claim"] not in claims["document"]],
        "sandbox SMS": [
            f"{m['to']}: {m['body']}"
            for m in state.texts
            if m["body"] not in sms_bodies and not (m["to"] in confirm_phones and "is confirmed" in m["body"])
        ],
    }
    return {k: v for k, v in found.items() if v}


def screen_findings(ids: list[str], log_ids: set[str]) -> dict[str, int]:
    got = Counter(ids)
    return {
        "expected": len(log_ids),
        "received": len(got),
        "missing": len(log_ids - set(got)),
        "doubled": sum(n - 1 for n in got.values() if n > 1),
        "foreign": len(set(got) - log_ids),
    }


def check(presses: list[Press], state: State, screens: dict[str, tuple[list[str], int, int | None]]) -> dict[str, Any]:
    """`screens`: name -> (event ids received, reloads, resumes on purpose or None)."""
    by_command: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in state.events:
        by_command[event.get("command_id") or ""].append(event)
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[str, list[str]] = defaultdict(list)
    for press in presses:
        row = kinds[press.kind]
        found = press_findings(press, state, by_command)
        row["presses"] += 1
        row["via broker"] += press.via == "broker"
        row[press.outcome] += 1
        row["failovers"] += press.failovers
        row["dup copies"] += press.dup_copies
        row["events missing"] += found["events_missing"]
        row["events doubled"] += found["events_doubled"]
        for verdict in ("lost", "duplicated", "unexpected"):
            if found[verdict]:
                row[verdict] += 1
                examples[verdict].append(
                    f"press {press.seq} {press.kind} via {press.via} key {press.key} "
                    f"({press.outcome} {press.status}): {'; '.join(found[verdict])}"
                )
        row["applied"] += press.accepted and not (found["lost"] or found["duplicated"])
    copies = Counter(e["id"] for e in state.events)
    log_ids = set(copies)
    unexpected = unexpected_effects(presses, state)
    total: Counter[str] = Counter()
    for row in kinds.values():
        total.update(row)
    answered: dict[str, list[float]] = defaultdict(list)
    for press in presses:
        answered[press.kind].append(press.ended - press.started)
        answered["total"].append(press.ended - press.started)
    latency = {kind: {"p50 s": _quantile(took, 0.5), "max s": _quantile(took, 1.0)} for kind, took in answered.items()}
    in_flight = {
        "outbox rows": sum(state.outbox.values()),
        "parked": len(state.parked),
        "queued messages": sum(state.queues.values()),
        "sms queued or sending": state.sms_in_flight,
        "campaign targets or campaigns under way": state.campaigns_in_flight,
        "presses without an answer": total["unresolved"],
    }
    watched = {
        name: {**screen_findings(ids, log_ids), "reloads": reloads, "resumes": resumes}
        for name, (ids, reloads, resumes) in screens.items()
    }
    failures = [
        f"{n} {what}"
        for what, n in (
            ("lost", total["lost"]),
            ("duplicated", total["duplicated"]),
            ("unexpected", total["unexpected"] + sum(len(v) for v in unexpected.values())),
            ("refused or failed presses", total["refused"] + total["failed"]),
            ("events missing", total["events missing"]),
            ("events doubled", total["events doubled"]),
            *((f"left in flight: {k}", v) for k, v in in_flight.items()),
        )
        if n
    ]
    failures += [
        f"screen {name}: {f['missing']} missing, {f['doubled']} doubled, {f['reloads']} reloads"
        for name, f in watched.items()
        if f["missing"] or f["doubled"] or f["reloads"]
    ]
    return {
        "kinds": {k: {**v, **latency[k]} for k, v in sorted(kinds.items())},
        "total": {**total, **latency.get("total", {})},
        "unexpected": unexpected,
        "examples": {k: v[:20] for k, v in examples.items()},
        "events": {
            "in log": len(state.events),
            "distinct": len(log_ids),
            "republished copies (same id)": sum(n - 1 for n in copies.values()),
        },
        "screens": watched,
        "in_flight": in_flight,
        "outbox": state.outbox,
        "parked": state.parked,
        "queues": {q: n for q, n in sorted(state.queues.items()) if n},
        "failures": failures,
        "ok": not failures,
    }


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else 0.0
