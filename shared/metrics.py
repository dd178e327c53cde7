"""Prometheus metrics (prometheus-client), one registry per process, served at `/metrics`.

The gateway serves them on its own port; a service on METRICS_PORT (0: off; `make run` gives each
process its own). Labels never carry an organisation, a user or an id: a command's type, an
outcome, a route. Scrape config: see the README ("Observe it").
"""

import asyncpg
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

REGISTRY = CollectorRegistry()
BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# Services: the command pipeline (shared/consumer.py) --------------------------------------
COMMANDS = Counter(
    "crm_commands_total",
    "Commands and events handled, by type and outcome (done, refused, replayed, retried, parked, pending)",
    ["service", "command", "outcome"],
    registry=REGISTRY,
)
COMMAND_SECONDS = Histogram(
    "crm_command_seconds",
    "Time from delivery to answer of a command",
    ["service", "command"],
    buckets=BUCKETS,
    registry=REGISTRY,
)
RETRIES = Counter(
    "crm_retries_scheduled_total", "Transient failures sent to a delay queue", ["service", "command"], registry=REGISTRY
)
PARKED = Counter(
    "crm_parked_total", "Messages parked after their last attempt", ["service", "command"], registry=REGISTRY
)
OUTBOX_BACKLOG = Gauge("crm_outbox_backlog", "Outbox rows not yet published", ["service"], registry=REGISTRY)
OUTBOX_OLDEST = Gauge(
    "crm_outbox_oldest_age_seconds",
    "Age of the oldest unpublished outbox row (0: none)",
    ["service"],
    registry=REGISTRY,
)
STALLED = Gauge(
    "crm_stalled_messages",
    "Messages this process has held past MESSAGE_DEADLINE_SECONDS (a stalled consumer: the process answers not ready)",
    registry=REGISTRY,
)

# Every process: its background loops (shared/loops.py) ------------------------------------
BACKGROUND_ERRORS = Counter(
    "crm_background_errors", "Failed cycles of a background loop (each was tried again)", ["loop"], registry=REGISTRY
)
BREAKER_OPEN = Gauge(
    "crm_breaker_state", "Provider circuit breaker: 0 closed, 1 half-open, 2 open", ["service"], registry=REGISTRY
)

# Gateway ------------------------------------------------------------------------------------
REQUESTS = Counter(
    "crm_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"], registry=REGISTRY
)
REQUEST_SECONDS = Histogram(
    "crm_http_request_seconds", "HTTP request duration", ["method", "route"], buckets=BUCKETS, registry=REGISTRY
)
WEBSOCKETS = Gauge("crm_websockets_open", "Open websockets", registry=REGISTRY)
REPLAYS = Counter(
    "crm_replays_total", "Websocket resumes served, by result (recovered or not)", ["recovered"], registry=REGISTRY
)
LOG_POSITION = Gauge("crm_event_log_position", "The last event-log offset this gateway read", registry=REGISTRY)
ARCHIVE_POSITION = Gauge(
    "crm_event_archive_position", "The last event-log offset this gateway's archiver wrote", registry=REGISTRY
)
REPLAY_RECORDS = Counter(
    "crm_replay_records_total",
    "Records resumes read: archive (their organisation's), log (every organisation's), probe (one per resume)",
    ["source"],
    registry=REGISTRY,
)


async def serve(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def start_server(port: int) -> web.AppRunner:
    """A service's own /metrics endpoint (127.0.0.1:port)."""
    app = web.Application()
    app.router.add_get("/metrics", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def watch_outbox(pool: asyncpg.Pool, service: str) -> None:
    """Keep the outbox gauges current (a scrape cannot wait on the database): one cycle of a loop."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, extract(epoch FROM now() - min(created_at)) AS age FROM outbox"
        )
    OUTBOX_BACKLOG.labels(service).set(row["n"])
    OUTBOX_OLDEST.labels(service).set(float(row["age"] or 0))
