"""The runtime every FastStream service shares: broker, pool, migrations, relay.

A service module builds one `Service`, registers its handlers (`command`, `effect`,
`event`, `query`), and runs `service.app`. Who handles what is said once, there: the
events a service registers are what its work queue is bound to (shared/topology.py).
"""

import asyncio
import logging as stdlib_logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aio_pika
import asyncpg
from aiohttp import web
from faststream import AckPolicy, FastStream
from faststream.rabbit import Channel, RabbitBroker, RabbitMessage
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from faststream.rabbit.prometheus import RabbitPrometheusMiddleware
from faststream.specification import AsyncAPI
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from pydantic import BaseModel, create_model
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    wait_exponential_jitter,
)

from shared import (
    amqp_decoding,
    db,
    event_log,
    inbox,
    logging,
    loops,
    metrics,
    topology,
    tracing,
)
from shared.consumer import Commands, Step
from shared.contracts.envelope import (
    Command,
    Event,
    EventData,
    GetCommand,
    Query,
    Reply,
)
from shared.group_commit import GroupCommit
from shared.identity import own_user
from shared.messages import Effect, Handler, of_type
from shared.outbox import Relay
from shared.settings import ServiceSettings, load

PRUNE_EVERY_SECONDS = 600
OUTBOX_GAUGES_EVERY_SECONDS = 5.0
WATCHDOG_EVERY_SECONDS = 1.0


log = logging.get("service")
T = TypeVar("T")
C = TypeVar("C", bound=Command)
D = TypeVar("D", bound=EventData)


class Service:
    def __init__(self, name: str, settings: ServiceSettings, migrations: Path | list[Path]):
        """`migrations`: the service's SQL folder(s), applied after the shared ones, in this order."""
        self.name, self.settings = name, settings
        amqp_decoding.install()  # before any connection: a hostile property must not end one (its docstring)
        self.migrations = [db.SHARED_MIGRATIONS, *(migrations if isinstance(migrations, list) else [migrations])]
        self.topology = topology.ServiceTopology(name, tuple(settings.retry_delays))
        # FastStream's per-message "Received/Processed" lines go to DEBUG: our own
        # structured `command.done` line says more, once. A mandatory publish that no
        # queue takes (a retry, a park) raises instead of being acked away.
        # Not "faststream": that logger comes with its own colourising handler.
        framework_log = logging.library_logger("framework", settings.log_level)
        self.broker = RabbitBroker(
            settings.amqp_url,
            graceful_timeout=30,
            log_level=stdlib_logging.DEBUG,
            logger=framework_log,
            default_channel=Channel(prefetch_count=settings.prefetch, on_return_raises=True),
        )
        self.identity, self.own_user = settings.identity, own_user(settings.amqp_url)
        self.commands = Commands(
            self.broker,
            None,
            self.topology,
            self.identity,  # its pool: once opened (_open)
            self.own_user,
            settings.message_deadline,
            settings.fault_crash_after_commit,
        )
        # The guard first: the outermost, so that nothing the others raise leaves a message unacknowledged.
        self.broker.add_middleware(self.commands.middleware())
        provider = tracing.setup(name, settings.otel_exporter_otlp_endpoint, settings.trace_file)
        if provider is not None:  # the W3C context from the AMQP headers: a consume span under the caller's
            self.broker.add_middleware(RabbitTelemetryMiddleware(tracer_provider=provider))
            AsyncPGInstrumentor().instrument(tracer_provider=provider)
        # FastStream's own consume-side metrics (received, acked, nacked, in progress, duration).
        self.broker.add_middleware(RabbitPrometheusMiddleware(registry=metrics.REGISTRY, app_name=name))
        self.commands_in = self.broker.subscriber(
            self.topology.work.faststream(),
            topology.exchange(topology.COMMANDS),
            ack_policy=AckPolicy.MANUAL,
            no_reply=True,
            title=self.topology.work.name,
        )
        self.queries_in = self.broker.subscriber(
            self.topology.queries.faststream(),
            topology.exchange(topology.QUERIES),
            ack_policy=AckPolicy.MANUAL,
            no_reply=True,
            title=self.topology.queries.name,
        )
        self.pool: asyncpg.Pool | None = None
        self._replies: aio_pika.abc.AbstractRobustConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._health: list[Callable[[], dict[str, Any]]] = []
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._background: list[Callable[[], Awaitable[None]]] = []
        self.loops: list[loops.Loop] = []
        self._events: list[str] = []
        self._routed: set[str] = set()  # every routing key and event type given a handler (each once)
        self._metrics: web.AppRunner | None = None
        self._startup_deadline = 0.0
        spec = AsyncAPI(
            self.broker,
            title=f"{name} service",
            version="1.0.0",
            description=f"Commands the {name} service consumes and the events it publishes.",
        )
        self.app = FastStream(
            self.broker,
            specification=spec,
            logger=framework_log,
            on_startup=[self._open],
            after_startup=[self._started],
            on_shutdown=[self._stop_tasks],
            after_shutdown=[self._close],
        )

    def command(self, model: type[C], handler: Handler[C], doc: str) -> None:
        """Route commands `model.ROUTING_KEY` (validated as `model`, the contract) through the pipeline to
        `handler(conn, command, meta)`, which runs in the command's transaction."""
        self._command(model, Step(handler), doc)

    def effect(self, model: type[C], effect: Effect[C, Any], doc: str) -> None:
        """Like `command`, for a command that acts outside the database first (a provider call):
        `effect.perform` runs before the transaction, `effect.record` in it (shared.messages.Effect)."""
        self._command(model, Step(effect), doc)

    def _command(self, model: type[Command], step: Step[Any], doc: str) -> None:
        commands, message = self.commands, self._message
        if model.INTERNAL:  # said in the AsyncAPI document, where integrators read what they may send
            doc = f"Internal: only the platform's own broker users may send it (403 from any other). {doc}"

        async def on_command(body: model) -> None:  # type: ignore[valid-type]  # a class known at run time
            await commands.handle(message(), body, step)

        self._route(self.commands_in, model.ROUTING_KEY, on_command, doc)

    def event(
        self, model: type[D], run: Handler[D] | Effect[D, Any], doc: str, when: Callable[[D], bool] | None = None
    ) -> None:
        """Consume events `model.TYPE` like commands (inbox, retry, parking): this service's work queue is bound
        to them when it starts. `run` (a handler, in the transaction, or an effect) is given the event's data
        parsed as `model` (data that is not is refused, stored and acked) and its `Meta`; `when(data)` false:
        nothing to do (answered "not applied", still done once)."""
        commands, message, step = self.commands, self._message, Step(run, model, when)
        self._events.append(model.TYPE)

        async def on_event(body: Event) -> None:
            await commands.handle_event(message(), body, step)

        self._route(self.commands_in, model.TYPE, on_event, doc)

    @property
    def subscriptions(self) -> tuple[str, ...]:
        """The event types registered (`event`): what the work queue is bound to on `events` when it starts."""
        return tuple(self._events)

    def query(self, model: type[Query], answer: Callable[..., Awaitable[Reply]], doc: str) -> None:
        """Answer queries `model.ROUTING_KEY` (`<service>.query.<name>`) with `answer(conn, query, org)`."""
        self._query(model, model.ROUTING_KEY, answer, doc)

    def _query(
        self, model: type[BaseModel], routing_key: str, answer: Callable[..., Awaitable[Reply]], doc: str
    ) -> None:
        commands, message = self.commands, self._message

        async def on_query(body: model) -> None:  # type: ignore[valid-type]  # a class known at run time
            await commands.answer(message(), lambda conn, org: answer(conn, body, org))

        self._route(self.queries_in, routing_key, on_query, doc)

    def _message(self) -> RabbitMessage:
        # Not a `msg: RabbitMessage` parameter: FastStream resolves such a context field with a sync
        # call that fast_depends runs in a worker thread, a thread hop for every message.
        return self.broker.context.get_local("message")

    def _route(self, subscriber: Any, type_: str, call: Callable[..., Awaitable[None]], doc: str) -> None:
        """One handler per command, query and event type: a second would never be called (FastStream gives a
        message to the first whose filter takes it), so registering it is a mistake said at start."""
        if type_ in self._routed:
            raise ValueError(f"{self.name}: {type_} is registered twice (one handler per type)")
        self._routed.add(type_)
        call.__name__ = call.__qualname__ = type_.replace(".", "_")  # names the operation in AsyncAPI
        call.__doc__ = doc
        subscriber(filter=of_type(type_))(call)

    def health(self, detail: Callable[[], dict[str, Any]]) -> None:
        """Add to what `<service>.query.health` answers (shown in the gateway's /readyz)."""
        self._health.append(detail)

    def in_background(self, job: Callable[[], Awaitable[None]]) -> None:
        """Run `job` once, when the service consumes; cancelled at shutdown. (Work that repeats is a `loop`.)"""
        self._background.append(job)

    def loop(
        self, name: str, cycle: Callable[[], Awaitable[object]], every: float, *, first_after: float = 0.0
    ) -> loops.Loop:
        """Run `cycle` every `every` seconds once the service consumes, for good (shared/loops.py): a failure is
        logged, counted and tried again; a cycle past MESSAGE_DEADLINE_SECONDS makes the service not ready."""
        loop = loops.Loop(name, cycle, every=every, deadline=self.settings.message_deadline, first_after=first_after)
        self.loops.append(loop)
        return loop

    def readiness(self) -> list[str]:
        """Why this instance is not ready (none: ready): messages held past their deadline, loops past theirs."""
        return self.commands.held.reasons() + loops.overdue(self.loops)

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        self._closers.append(closer)

    def finish_routing(self) -> None:
        """Register after the service's own handlers: what every service answers the same way.

        `<service>.query.command` gives an accepted command's final answer (202 until it has one);
        a command or query of a type no handler took is answered 422.
        """
        commands = self.commands
        self._query(
            GetCommand,
            f"{self.name}.query.command",
            _command_status,
            "The stored answer of a command, or 202 while it has none.",
        )

        @self.queries_in(filter=of_type(f"{self.name}.query.health"))
        async def health(msg: RabbitMessage) -> None:
            """How this instance is doing: ready or not (why), its own detail (e.g. a circuit breaker's state)."""
            reasons = self.readiness()
            detail = {
                "service": self.name,
                "ready": not reasons,
                **({"reasons": reasons} if reasons else {}),
                "stalled": len(self.commands.held.stalled()),
                **{k: v for d in self._health for k, v in d().items()},
            }
            await commands.answer(msg, lambda conn, org: _healthy(detail))

        @self.commands_in
        async def unknown_command(msg: RabbitMessage) -> None:
            """Any other routing key: answered 422."""
            await commands.refuse(msg, commands.unknown(msg, "command"))

        @self.queries_in
        async def unknown_query(msg: RabbitMessage) -> None:
            """Any other routing key: answered 422."""
            await commands.refuse(msg, commands.unknown(msg, "query"))

    def document_events(self, events: tuple[type[EventData], ...]) -> None:
        """Describe the events this service publishes (through its outbox) in its AsyncAPI document."""
        for data in events:
            envelope = create_model(f"{data.__name__}Event", __base__=Event, data=(data, ...))
            self.broker.publisher(
                exchange=topology.exchange(topology.EVENTS),
                routing_key=data.TYPE,
                schema=envelope,
                title=data.TYPE,
                description=data.__doc__,
                persist=True,
            )

    async def _open(self) -> None:
        """Each step waits for the database or the broker while it is away (started before them, or they
        restart): the service comes up when they do, instead of exiting for its supervisor to start again."""
        s = self.settings
        self._startup_deadline = time.monotonic() + s.startup_wait_seconds  # one deadline for every step
        pool = await self._patiently(
            "database",
            lambda: db.create_pool(
                s.database_url,
                self.name,
                size=s.db_pool_size,
                lock_timeout_ms=s.lock_timeout_ms,
                statement_timeout_ms=s.statement_timeout_ms,
            ),
        )
        self.pool = pool
        await self._patiently("database", lambda: db.migrate(pool, self.name, self.migrations))
        self.commands.pool = pool
        self.commands.group = GroupCommit(pool, s.group_commit_max, s.fault_crash_after_group_commit)
        await self._patiently("broker", lambda: topology.declare_all(s.amqp_url, self.topology, self.subscriptions))
        self._replies = await self._patiently(
            "broker",
            lambda: aio_pika.connect_robust(s.amqp_url, client_properties={"connection_name": f"{self.name}.replies"}),
        )
        self.commands.replies = await self._replies.channel(publisher_confirms=False)
        await self._patiently("broker", self._ensure_log)
        await self._patiently("broker", self.broker.connect)  # FastStream's own, which it starts next

    async def _ensure_log(self) -> None:
        """Before the relay publishes anything: no event of a fresh deployment misses the log."""
        connection = await aio_pika.connect(self.settings.amqp_url)
        async with connection, self.pool.acquire() as conn:  # type: ignore[union-attr]  # opened by _open
            await event_log.ensure(connection, conn, self.settings.retention)

    async def _patiently(self, what: str, step: Callable[[], Awaitable[T]]) -> T:
        """`step()`, again with backoff while `what` is unreachable, until STARTUP_WAIT_SECONDS after the start
        began; then the error (the supervisor's turn). tenacity: the backoff and jitter without a loop of ours."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(loops.unreachable),
            wait=wait_exponential_jitter(multiplier=0.2, max=5, jitter=0.2),
            stop=lambda _: time.monotonic() >= self._startup_deadline,
            reraise=True,
            before_sleep=lambda state: log.warning(
                "service.waiting",
                service=self.name,
                waiting_for=what,
                attempt=state.attempt_number,
                error=repr(state.outcome.exception()) if state.outcome else None,
            ),
        )
        async for attempt in retrying:
            with attempt:
                return await step()
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _started(self) -> None:
        s, pool = self.settings, self.pool
        assert pool is not None  # opened by _open, which FastStream ran first
        relay = Relay(pool, s.database_url, self.name, self._publish_event, batch=s.relay_batch)
        self._closers.append(relay.close)
        self.loop("relay", relay.cycle, 0)  # (beside the service's own, registered before it started)
        self.loop("inbox_prune", lambda: self._prune(pool), PRUNE_EVERY_SECONDS)
        self.loop("outbox_gauges", lambda: metrics.watch_outbox(pool, self.name), OUTBOX_GAUGES_EVERY_SECONDS)
        self.loop("watchdog", self._watch, WATCHDOG_EVERY_SECONDS)
        self._tasks = [
            *(asyncio.create_task(loop.run()) for loop in self.loops),
            *(asyncio.create_task(_once(job)) for job in self._background),
        ]
        if self.settings.metrics_port:
            try:
                self._metrics = await metrics.start_server(self.settings.metrics_port)
            except OSError as exc:  # metrics are not worth refusing to serve the buttons
                log.error("metrics.unavailable", port=self.settings.metrics_port, error=repr(exc))
        log.info("service.started", service=self.name)

    async def _watch(self) -> None:
        """The watchdog's cycle: stalled messages logged and counted (what is overdue is read when asked)."""
        self.commands.held.check()
        for reason in loops.overdue(self.loops):
            log.error("loop.overdue", service=self.name, reason=reason)

    async def _publish_event(
        self, routing_key: str, body: bytes, headers: dict[str, Any], message_id: str, correlation_id: str | None
    ) -> None:
        await self.broker.publish(
            body,
            exchange=topology.exchange(topology.EVENTS),
            routing_key=routing_key,
            headers=headers,
            message_id=message_id,
            correlation_id=correlation_id,
            content_type="application/json",
            persist=True,
            mandatory=False,
            user_id=self.commands.own_user,
        )

    async def _prune(self, pool: asyncpg.Pool) -> None:
        async with db.transaction(pool) as conn:
            removed = await inbox.prune(conn, self.settings.idempotency_ttl_hours)
        log.info("inbox.pruned", removed=removed)

    async def _stop_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _close(self) -> None:
        if self._metrics is not None:
            await self._metrics.cleanup()
        for closer in self._closers:
            await closer()
        if self.pool is not None:
            await self.pool.close()
        if self._replies is not None:
            await self._replies.close()
        log.info("service.stopped", service=self.name)


async def _once(job: Callable[[], Awaitable[None]]) -> None:
    """A one-off background job: its failure is logged with its traceback and counted, never silent."""
    try:
        await job()
    except Exception as exc:
        metrics.BACKGROUND_ERRORS.labels("once").inc()
        log.error("background.failed", error=repr(exc)[:500], exc_info=exc)


async def _healthy(detail: dict[str, Any]) -> Reply:
    return Reply(status=200, body=detail)


async def _command_status(conn: asyncpg.Connection, query: GetCommand, org: str) -> Reply:
    stored = await inbox.stored_reply(conn, query.commandId, org)
    return stored or Reply(status=202, body={"command": {"id": query.commandId, "status": "accepted"}})


def run(settings_cls: type[ServiceSettings], build: Callable[[Any], Service]) -> None:
    """A service's `__main__`: settings (exit naming a bad variable), logging, run until stopped."""
    config = load(settings_cls)
    logging.configure(config.log_level, config.log_json)
    asyncio.run(build(config).app.run())
