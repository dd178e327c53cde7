"""`crm` / `python -m crm_client`: the buttons from a shell, one JSON document per line on stdout.

Exit status: 0 done, 1 refused (the problem+json body is printed), 2 usage error, 3 queued
offline (see `crm pending`), 4 gateway unreachable and no offline db (or the SMS breaker is
open: nothing was sent), 5 accepted by the gateway but no final answer in time.

`pending` lists the presses of every scope in the file, each saying whether this URL and token
replay it (`replays`: plain `flush`; `replays_with_all_scopes`: `flush --all-scopes`, the same
organisation and user); `flush --all-scopes` reports the rows of another identity as `skipped`.
"""

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from crm_client.buttons import CLI
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
    p.add_argument(
        "--offline-db",
        default=os.environ.get("CRM_OFFLINE_DB"),
        help="SQLite file of the offline queue (env CRM_OFFLINE_DB)",
    )
    p.add_argument(
        "--attempts",
        type=int,
        default=int(os.environ.get("CRM_ATTEMPTS", "6")),
        help="sends per call, the first included (env CRM_ATTEMPTS)",
    )
    p.add_argument(
        "--total-time",
        type=float,
        default=float(os.environ.get("CRM_TOTAL_TIME", "30")),
        help="seconds a call may spend retrying (env CRM_TOTAL_TIME)",
    )
    commands = p.add_subparsers(dest="command", required=True)
    groups: dict[str, Any] = {}
    for entry in CLI:  # one subcommand per button and read (crm_client/buttons.py, from the server's table)
        if entry["group"] not in groups:
            groups[entry["group"]] = commands.add_parser(entry["group"]).add_subparsers(dest="action", required=True)
        sub = groups[entry["group"]].add_parser(entry["action"], help=getattr(Client, entry["method"]).__doc__)
        sub.set_defaults(client_method=entry["method"])  # not "method": a field may be called so
        for name, kind, required in entry["args"]:
            nargs = "+" if kind == "list" else (None if required else "?")
            sub.add_argument(name, metavar=name.upper(), nargs=nargs, type=int if kind == "int" else str)
        for flag, name, kind in entry["options"]:
            if kind == "bool":
                sub.add_argument(flag, dest=name, action="store_true", default=None)
            else:
                sub.add_argument(
                    flag, dest=name, type=int if kind == "int" else str, action="append" if kind == "list" else "store"
                )

    # An upload is a file, not a body: written by hand (see Client.attach_document).
    if "document" not in groups:
        groups["document"] = commands.add_parser("document").add_subparsers(dest="action", required=True)
    sub = groups["document"].add_parser("attach", help=Client.attach_document.__doc__)
    sub.set_defaults(hand_written=attach_document)
    sub.add_argument("lead_id", metavar="LEAD_ID")
    sub.add_argument("file", metavar="FILE", type=Path)
    sub.add_argument("--filename", help="the name to store (default: the file's)")
    sub.add_argument("--content-type", dest="content_type", help="checked against the bytes (default: told by them)")

    commands.add_parser("pending", help="the presses waiting in the offline queue, of every scope")
    flush = commands.add_parser("flush", help="replay the offline queue now (this scope's presses)")
    flush.add_argument(
        "--all-scopes",
        action="store_true",
        help="also the presses queued with another URL or issuer by this token's organisation and user",
    )
    events = commands.add_parser("events", help="print events, one per line")
    events.add_argument("--topic", action="append", dest="topics", metavar="T")
    events.add_argument("--resume", type=Resume.parse, metavar="EPOCH:POSITION")
    events.add_argument("--count", type=int, help="stop after N events")
    return p


def out(document: Any) -> None:
    print(json.dumps(document), flush=True)


def attach_document(client: Client, args: argparse.Namespace) -> Awaitable[Any]:
    return client.attach_document(args.lead_id, args.file, args.filename, args.content_type)


def press(args: argparse.Namespace) -> Callable[[Client], Awaitable[Any]] | None:
    """The client method a button or read subcommand names, called with its arguments."""
    hand_written = getattr(args, "hand_written", None)
    if hand_written is not None:
        return lambda client: hand_written(client, args)
    method = getattr(args, "client_method", None)
    if method is None:
        return None
    entry = next(e for e in CLI if e["method"] == method)
    names = [name for name, _, _ in entry["args"]] + [name for _, name, _ in entry["options"]]
    return lambda client: getattr(client, method)(**{name: getattr(args, name) for name in names})


async def run(args: argparse.Namespace) -> int:
    # No background replay: a command line run does what it is asked, then ends.
    async with Client(
        args.url,
        args.token,
        args.offline_db,
        attempts=args.attempts,
        total_time=args.total_time,
        replay_in_background=False,
    ) as client:
        if args.command == "pending":
            for queued in client.pending(all_scopes=True):
                out(listed(client, queued))
            return DONE
        if args.command == "flush":
            return await flush(client, args.all_scopes)
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


def listed(client: Client, queued: Queued) -> dict[str, Any]:
    """A pending press (its `scope` in it), and whether this URL and token replay it."""
    return {
        **queued.to_json(),
        "replays": client.replays(queued),
        "replays_with_all_scopes": client.replays(queued, all_scopes=True),
    }


async def flush(client: Client, all_scopes: bool) -> int:
    """Replay; with `all_scopes`, another identity's presses are said `skipped` first, and never sent."""
    if all_scopes:
        for queued in client.pending(all_scopes=True):
            if not client.replays(queued, all_scopes=True):
                out({"skipped": asdict(queued), "reason": "another organisation or user: not sent with this token"})
    settled = await client.flush(all_scopes=all_scopes)
    for outcome in settled:
        out(outcome.to_json())
    if any(client.replays(q, all_scopes) for q in client.pending(all_scopes)):
        return QUEUED
    return REFUSED if any(o.state == "failed" for o in settled) else DONE


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
        await stream.aclose()
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
        out(
            {
                "type": "/problems/unreachable",
                "title": "Gateway unreachable",
                "status": getattr(exc, "status", None),
                "detail": str(exc),
            }
        )
        return UNREACHABLE
    except ValueError as exc:  # e.g. neither a message nor a template
        print(f"crm: error: {exc}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        return 130
