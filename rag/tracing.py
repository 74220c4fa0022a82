"""OpenTelemetry traces, off unless an OTLP endpoint is configured (the API's spans are no-ops
until a tracer provider is installed).

One trace follows a question from the HTTP request through retrieval and generation, and an
ingestion request through the Celery tasks it started: the context crosses the broker in the
task's `trace` argument (`carrier()` on the sending side, `span(..., parent=...)` on the other).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("rag")


@contextmanager
def span(
    name: str,
    *,
    parent: Mapping[str, str] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    **attributes: str | int | float | bool | None,
) -> Iterator[Span]:
    """A child of the current span, or of the remote one in `parent` (a task's carrier)."""
    context = propagate.extract(parent) if parent else None
    values = _attributes(attributes)
    with _tracer.start_as_current_span(name, context=context, kind=kind, attributes=values) as s:
        yield s


def start_span(name: str, **attributes: str | int | float | bool | None) -> Span:
    """A child of the current span that is not made current, for work spread over a
    generator's resumptions (which may run in other contexts, e.g. a thread pool); the caller
    ends it."""
    return _tracer.start_span(name, attributes=_attributes(attributes))


def _attributes(
    attributes: Mapping[str, str | int | float | bool | None],
) -> dict[str, str | int | float | bool]:
    return {f"rag.{k}": v for k, v in attributes.items() if v is not None}


def carrier() -> dict[str, str]:
    """The current trace context, to send with a task (empty when tracing is off)."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


def trace_id() -> str | None:
    """The current trace's id (hex), for log lines; None outside a recorded span."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def configure_tracing(endpoint: str | None, service: str) -> bool:
    """Export spans over OTLP/HTTP to `endpoint` (e.g. http://otel-collector:4318); no
    endpoint: leave tracing off. Returns whether it is on."""
    if not endpoint:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    log.info("tracing on: spans to %s as service %s", endpoint, service)
    return True
