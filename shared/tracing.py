"""Traces (OpenTelemetry): one button press is one trace, gateway → service → event → websocket.

    gateway: HTTP span ─(traceparent in the command's AMQP headers)─► service: consume span
        ─(traceparent kept on the outbox rows of the command)─► relay: publish span
        ─(traceparent in the event's AMQP headers)─► gateway: events.fanout span (to the screens)

The W3C trace context rides in AMQP headers (FastStream's RabbitTelemetryMiddleware reads and
writes them on the services' side; the gateway's own publishes and the outbox rows carry it here).
Off unless OTEL_EXPORTER_OTLP_ENDPOINT (OTLP over HTTP) or TRACE_FILE (spans as JSON lines, for
tests and a quick look) is set: with neither, nothing is instrumented and nothing costs.
"""

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

_enabled = False


def setup(service: str, otlp_endpoint: str, trace_file: str) -> TracerProvider | None:
    """The process's tracer provider, or None (tracing off)."""
    global _enabled
    if not (otlp_endpoint or trace_file):
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces"))
        )
    if trace_file:
        provider.add_span_processor(SimpleSpanProcessor(FileExporter(trace_file)))
    trace.set_tracer_provider(provider)
    _enabled = True
    return provider


def carrier() -> dict[str, str]:
    """The current trace context as headers (empty when tracing is off or there is no span)."""
    headers: dict[str, str] = {}
    if _enabled:
        propagate.inject(headers)
    return headers


@contextmanager
def span(name: str, headers: Mapping[str, Any] | None, **attributes: Any) -> Iterator[None]:
    """A span whose parent is the trace context in `headers` (a message's), if any."""
    if not _enabled:
        yield
        return
    parent = propagate.extract({k: str(v) for k, v in (headers or {}).items()})
    with trace.get_tracer("crm").start_as_current_span(name, context=parent, attributes=attributes):
        yield


@contextmanager
def attached(headers: Mapping[str, Any] | None) -> Iterator[None]:
    """Make the trace context in `headers` the current one (e.g. the command's, when its events are published)."""
    if not _enabled or not headers:
        yield
        return
    token = context.attach(propagate.extract({k: str(v) for k, v in headers.items()}))
    try:
        yield
    finally:
        context.detach(token)


class FileExporter(SpanExporter):
    """Finished spans as JSON lines (trace and span ids, parent, name, service)."""

    def __init__(self, path: str):
        self._file = open(path, "a", buffering=1)  # noqa: SIM115  (open for the process's life)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for s in spans:
            self._file.write(
                json.dumps(
                    {
                        "trace_id": format(s.context.trace_id, "032x"),
                        "span_id": format(s.context.span_id, "016x"),
                        "parent_id": format(s.parent.span_id, "016x") if s.parent else None,
                        "name": s.name,
                        "service": s.resource.attributes.get("service.name"),
                        "kind": str(s.kind),
                    }
                )
                + "\n"
            )
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._file.close()
