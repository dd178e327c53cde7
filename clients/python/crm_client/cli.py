"""`crm` / `python -m crm_client`: the buttons from a shell, one JSON document per line on stdout.

Exit status: 0 done, 1 refused (the problem+json body is printed), 2 usage error, 3 queued
offline (see `crm pending`), 4 gateway unreachable and no offline db (or the SMS breaker is
open: nothing was sent), 5 accepted by the gateway but no final answer in time.
"""
import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from crm_client.client import Client
from crm_client.errors import (
    CircuitOpen,
    Refused,
    ServerError,
    StillAccepted,
    Unreachable,
)
from crm_client.live import Event, Resume
from crm_client.offline import Queued

DONE, REFUSED, USAGE, QUEUED, UNREACHABLE, ACCEPTED = 0, 1, 2, 3, 4, 5


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="crm", description="The CRM buttons from the command line.")
    p.add_argument("--url", default=os.environ.get("CRM_URL"), help="the gateway (env CRM_URL)")
    p.add_argument("--token", default=os.environ.get("CRM_TOKEN"), help="a bearer JWT (env CRM_TOKEN)")
    p.add_argument("--offline-db", default=os.environ.get("CRM_OFFLINE_DB"),
                   help="SQLite file of the offline queue (env CRM_OFFLINE_DB)")
    p.add_argument("--attempts", type=int, default=int(os.environ.get("CRM_ATTEMPTS", "6")),
                   help="sends per call, the first included (env CRM_ATTEMPTS)")
    p.add_argument("--total-time", type=float, default=float(os.environ.get("CRM_TOTAL_TIME", "30")),
                   help="seconds a call may spend retrying (env CRM_TOTAL_TIME)")
    commands = p.add_subparsers(dest="command", required=True)

    lead = commands.add_parser("lead").add_subparsers(dest="action", required=True)
    create = lead.add_parser("create")
    create.add_argument("name")
    create.add_argument("phone")
    create.add_argument("--email")
    status = lead.add_parser("status")
    status.add_argument("lead_id")
    status.add_argument("status")
    status.add_argument("--expected")
    bulk = lead.add_parser("bulk-status")
    bulk.add_argument("status")
    bulk.add_argument("lead_ids", nargs="+", metavar="LEAD_ID")

    booking = commands.add_parser("booking").add_subparsers(dest="action", required=True)
    book = booking.add_parser("create")
    book.add_argument("lead_id")
    book.add_argument("starts_at")
    book.add_argument("--duration", type=int)
    book.add_argument("--title")
    confirm = booking.add_parser("confirm")
    confirm.add_argument("appointment_id")
    confirm.add_argument("--send-sms", action="store_true")

    sms = commands.add_parser("sms").add_subparsers(dest="action", required=True)
    send = sms.add_parser("send")
    send.add_argument("lead_id")
    send.add_argument("message")
    history = sms.add_parser("history")
    history.add_argument("lead_id")

    commands.add_parser("pending", help="the presses waiting in the offline queue")
    commands.add_parser("flush", help="replay the offline queue now")
    events = commands.add_parser("events", help="print events, one per line")
    events.add_argument("--topic", action="append", dest="topics", metavar="T")
    events.add_argument("--resume", type=Resume.parse, metavar="EPOCH:POSITION")
    events.add_argument("--count", type=int, help="stop after N events")
    return p


def out(document: Any) -> None:
    print(json.dumps(document), flush=True)


def press(args: argparse.Namespace) -> Callable[[Client], Awaitable[Any]] | None:
    table: dict[tuple[str, str | None], Callable[[Client], Awaitable[Any]]] = {
        ("lead", "create"): lambda c: c.create_lead(args.name, args.phone, args.email),
        ("lead", "status"): lambda c: c.update_lead_status(args.lead_id, args.status, args.expected),
        ("lead", "bulk-status"): lambda c: c.bulk_update_lead_status(args.lead_ids, args.status),
        ("booking", "create"): lambda c: c.create_appointment(args.lead_id, args.starts_at, args.duration, args.title),
        ("booking", "confirm"): lambda c: c.confirm_booking(args.appointment_id, send_sms=args.send_sms),
        ("sms", "send"): lambda c: c.send_sms(args.lead_id, args.message),
        ("sms", "history"): lambda c: c.sms_history(args.lead_id),
    }
    return table.get((args.command, getattr(args, "action", None)))


async def run(args: argparse.Namespace) -> int:
    # No background replay: a command line run does what it is asked, then ends.
    async with Client(args.url, args.token, args.offline_db, attempts=args.attempts, total_time=args.total_time,
                      replay_in_background=False) as client:
        if args.command == "pending":
            for queued in client.pending():
                out(queued.to_json())
            return DONE
        if args.command == "flush":
            settled = await client.flush()
            for outcome in settled:
                out(outcome.to_json())
            if client.pending():
                return QUEUED
            return REFUSED if any(o.state == "failed" for o in settled) else DONE
        if args.command == "events":
            return await events(client, args)
        action = press(args)
        assert action is not None  # argparse let only known commands through
        result = await action(client)
        if isinstance(result, Queued):
            out(result.to_json())
            return QUEUED
        out(result)
        return DONE


async def events(client: Client, args: argparse.Namespace) -> int:
    """Events on stdout, one per line; a Reload (the gap could not be replayed) on stderr."""
    count = 0
    stream = client.subscribe(args.topics or ["#"], args.resume)
    try:
        async for item in stream:
            if not isinstance(item, Event):
                print(json.dumps(item.to_json()), file=sys.stderr, flush=True)
                continue
            out(item.to_json())
            count += 1
            if args.count is not None and count >= args.count:
                return DONE
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return DONE


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)  # exits 2 on a usage error
    if not args.url or not args.token:
        p.print_usage(sys.stderr)
        print("crm: error: --url and --token (or CRM_URL and CRM_TOKEN) are required", file=sys.stderr)
        return USAGE
    if args.command in ("pending", "flush") and not args.offline_db:
        print(f"crm: error: {args.command} needs --offline-db (or CRM_OFFLINE_DB)", file=sys.stderr)
        return USAGE
    try:
        return asyncio.run(run(args))
    except (Refused, ServerError) as exc:
        out(exc.problem)
        return REFUSED
    except StillAccepted as exc:
        out({"command": {"id": exc.command_id, "status": "accepted"}, "location": exc.location})
        return ACCEPTED
    except (Unreachable, CircuitOpen) as exc:
        out({"type": "/problems/unreachable", "title": "Gateway unreachable", "status": getattr(exc, "status", None),
             "detail": str(exc)})
        return UNREACHABLE
    except ValueError as exc:  # e.g. neither a message nor a template
        print(f"crm: error: {exc}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        return 130
