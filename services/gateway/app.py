"""Wiring of the gateway: `init_app()` builds the aiohttp application."""

import asyncio
import time
from collections.abc import AsyncIterator
from uuid import uuid4

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor

from services.gateway import cors, errors
from services.gateway.archive import Archive, Archiver
from services.gateway.auth import principal_from
from services.gateway.bus import Bus
from services.gateway.catalog import PUBLIC
from services.gateway.keys import ARCHIVE, ARCHIVER, BLOBS, BUS, HUB, READINESS, RULES, SERVICES, SETTINGS
from services.gateway.readiness import Readiness
from services.gateway.routes import setup_routes
from services.gateway.settings import GatewaySettings
from services.gateway.stream import Reader
from services.gateway.ws import TOO_SLOW, Hub
from shared import amqp_decoding, logging, metrics, tracing
from shared import buttons as buttons_table
from shared.blobs import open_store

ROUTED_SERVICES = list(buttons_table.SERVICES)
PUBLIC_API = {"/api/openapi.json", *PUBLIC}  # the documents of the API and its table of buttons: no data
log = logging.get("gateway")


@web.middleware
async def context(request: web.Request, handler: Handler) -> web.StreamResponse:
    request["correlation_id"] = uuid4().hex
    started = time.monotonic()
    status = 500
    with logging.bind(correlation_id=request["correlation_id"]):
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # one the problems middleware, inside this one, lets through (< 400)
            status = exc.status
            raise
        finally:
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"  # a template: bounded labels
            metrics.REQUESTS.labels(request.method, route, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(request.method, route).observe(time.monotonic() - started)
            log.info(
                "http.request",
                method=request.method,
                path=request.path,
                status=status,
                command_id=request.get("command_id"),
                org_id=getattr(request.get("principal"), "org", None),
                ms=round((time.monotonic() - started) * 1000, 1),
            )


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/api/") or request.path in PUBLIC_API:
        return await handler(request)
    principal = principal_from(request, request.app[RULES])
    request["principal"] = principal
    with logging.bind(org_id=principal.org, user_id=principal.user):
        return await handler(request)


async def broker(app: web.Application) -> AsyncIterator[None]:
    hub, reader = app[HUB], app[HUB].reader
    assert reader is not None  # attached when the app is built (init_app), before any startup hook runs
    await app[BUS].start()
    await reader.start()
    await app[ARCHIVER].start()
    pinger = asyncio.create_task(hub.ping())
    yield
    pinger.cancel()
    await app[READINESS].close()
    await app[ARCHIVER].stop()
    await reader.stop()
    await app[ARCHIVE].close()
    await app[BUS].stop()


async def close_blobs(app: web.Application) -> None:
    await app[BLOBS].close()


async def close_screens(app: web.Application) -> None:
    # on_shutdown runs before aiohttp waits for open handlers: websockets would hold it up.
    await app[HUB].close_all()


def init_app(settings: GatewaySettings) -> web.Application:
    amqp_decoding.install()  # before any connection: a hostile property must not end one (its docstring)
    provider = tracing.setup("gateway", settings.otel_exporter_otlp_endpoint, settings.trace_file)
    if provider is not None:  # a server span per request: the instrumentor adds its middleware to the app
        AioHttpServerInstrumentor().instrument(tracer_provider=provider)
    # Preflights are answered before `authenticate` (they carry no token) and inside `context` (logged); the CORS
    # headers of every other answer, problems and 304s included, go on as it is sent (cors.py says why). With no
    # origin listed (the default) none of it is wired: not a step more on any request.
    middlewares: list[Middleware] = [context, errors.problems, authenticate]
    if allowed := settings.cors_origins:
        middlewares.insert(1, cors.preflight(allowed))
    app = web.Application(middlewares=middlewares)
    if allowed:
        app.on_response_prepare.append(cors.headers(allowed))
    instance = f"gateway.{uuid4().hex[:12]}"
    archive = Archive(settings.database_url)  # where resumes read their organisation's records
    hub = Hub(
        settings.token_rules,
        settings.ws_queue_size,
        settings.ws_hello_timeout,
        settings.allowed_origins,
        settings.ws_ping_interval,
        max_replays=settings.ws_max_replays,
        max_replays_per_user=settings.ws_max_replays_per_user,
        archive=archive,
    )
    # A new log (deleted, or another epoch): every position a screen holds is void; they resume and reload.
    hub.reader = Reader(
        settings.amqp_url,
        settings.database_url,
        settings.retention,
        instance,
        hub.live,
        lambda: hub.close_all(TOO_SLOW, b"the event log was recreated: resume"),
    )
    app[SETTINGS] = settings
    app[RULES] = settings.token_rules  # what a token must be: made once, the key of the verified-token cache
    app[HUB] = hub
    app[ARCHIVE] = archive
    # Every gateway runs one; the one holding the lock archives, the others stand by (archive.py).
    app[ARCHIVER] = Archiver(settings.amqp_url, settings.database_url, instance)
    app[SERVICES] = ROUTED_SERVICES
    app[BUS] = Bus(settings.amqp_url, ROUTED_SERVICES, settings.publish_timeout, instance)
    app[READINESS] = Readiness(app[BUS], hub, settings.database_url, ROUTED_SERVICES)  # /readyz's checks, once a second
    app[BLOBS] = open_store(settings)  # uploads go there first (claim check): services/gateway/uploads.py
    app.cleanup_ctx.append(broker)
    app.on_shutdown.append(close_screens)
    app.on_cleanup.append(close_blobs)
    setup_routes(app)
    return app
