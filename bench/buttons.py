"""The other buttons, on the same running stack: confirm an appointment, send an SMS.

- confirm: POST /api/bookings/confirm {"appointmentId"} on appointments booked
  beforehand (POST /api/appointments, a week ahead, one per fresh lead); press ->
  websocket is the arrival of that appointment's `appointments.confirmed`.
- send-sms: POST /api/leads/send-sms {"leadId", "message"}, one per lead (the same
  leads), through the SMS service and the Twilio sandbox; press -> websocket is
  the arrival of that lead's `sms.sent`. A 200 answer says "sent", or "queued"
  when the provider could not be called (the service retries it later).

Each is driven like the status changes (`--concurrency` in flight, after
`--warmup` unmeasured presses on other appointments / leads), `--button-requests`
measured presses each.
"""

import argparse
import json
from collections import Counter
from typing import Any

import aiohttp

from bench import checks, report, seed
from bench.driver import Job, Listener, Sample, client, drive

MESSAGE = "Hello from the bench: your quote is ready."


async def press(
    http: aiohttp.ClientSession,
    ws_http: aiohttp.ClientSession,
    url: str,
    token: str,
    path: str,
    topic: str,
    key: str,
    warm: list[Job],
    measured: list[Job],
    args: argparse.Namespace,
) -> tuple[list[Sample], dict[str, Any]]:
    """Warm up, then drive the measured jobs; the samples and the press -> websocket figures."""
    events = Listener(key=key)
    await events.open(ws_http, url, token, [topic])
    try:
        await drive(http, f"{url}{path}", token, warm, args.concurrency)
        await events.wait_for([k for k, _ in warm], args.event_timeout)
        samples = await drive(http, f"{url}{path}", token, measured, args.concurrency)
        await events.wait_for([k for k, _ in measured], args.event_timeout)
    finally:
        await events.close()
    return samples, report.event_figures(samples, events.arrivals, events.closed)


def confirm_jobs(appointment_ids: list[str]) -> list[Job]:
    return [(i, json.dumps({"appointmentId": i}).encode()) for i in appointment_ids]


def sms_jobs(lead_ids: list[str]) -> list[Job]:
    return [(i, json.dumps({"leadId": i, "message": MESSAGE}).encode()) for i in lead_ids]


def sms_answers(samples: list[Sample]) -> dict[str, int]:
    """The `sms.status` of the 200 answers: "sent", or "queued" when the provider was not reached."""
    return dict(Counter(str(json.loads(s.body).get("sms", {}).get("status")) for s in samples if s.status == 200))


async def sandbox_messages(sandbox_url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(f"{sandbox_url}/_sandbox/messages") as response:
        return len((await response.json())["messages"])


async def measure(url: str, sandbox_url: str, database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    org, token = seed.tenant()
    count = args.warmup + args.button_requests
    async with client(args.concurrency, args.request_timeout) as http, client(1, None) as ws_http:
        leads = await seed.via_gateway(http, url, token, count, args.concurrency)
        await checks.wait_projected(database_url, org, count, args.event_timeout)
        appointments = await seed.appointments_via_gateway(http, url, token, leads, args.concurrency)

        confirm, confirm_events = await press(
            http,
            ws_http,
            url,
            token,
            "/api/bookings/confirm",
            "appointments.confirmed",
            "appointmentId",
            confirm_jobs(appointments[: args.warmup]),
            confirm_jobs(appointments[args.warmup :]),
            args,
        )
        # sms consumes every appointments.confirmed (no SMS asked for here): let it finish before sending.
        await checks.wait_handled(database_url, "sms", org, "appointments.confirmed", count, args.event_timeout)

        sms, sms_events = await press(
            http,
            ws_http,
            url,
            token,
            "/api/leads/send-sms",
            "sms.sent",
            "leadId",
            sms_jobs(leads[: args.warmup]),
            sms_jobs(leads[args.warmup :]),
            args,
        )
    measured_leads = leads[args.warmup :]
    return {
        "requests": args.button_requests,
        "warmup": args.warmup,
        "confirm": {
            "http": report.http_figures(confirm),
            "events": confirm_events,
            "db_confirmed": await checks.confirmed(database_url, appointments[args.warmup :]),
        },
        "send_sms": {
            "http": report.http_figures(sms),
            "events": sms_events,
            "answers": sms_answers(sms),
            "db_statuses": await checks.sms_statuses(database_url, org, measured_leads, args.event_timeout),
            "sandbox_messages": await sandbox_messages(sandbox_url),
            "sandbox_expected": count,
        },
    }
