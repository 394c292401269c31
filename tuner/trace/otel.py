"""Traces as OpenTelemetry spans: OTLP/HTTP to a collector, or OTLP JSON files.

The spans are the OpenTelemetry SDK's own ``ReadableSpan`` values; the OTLP exporter
(``opentelemetry-exporter-otlp-proto-http``) sends them, and the SDK's OTLP encoder plus
protobuf's JSON printer write the files (the OTLP/JSON form the collector's file receiver,
Jaeger and Tempo read).  No wire format is written here.  Needs ``tuner[tracing]``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tuner.domain.errors import ConfigError, Problem
from tuner.trace.model import Span, Trace

_NS = 1_000_000_000


def _sdk() -> Any:
    try:
        from opentelemetry import trace as trace_api
        from opentelemetry.sdk import resources
        from opentelemetry.sdk import trace as sdk_trace
        from opentelemetry.trace import status
    except ImportError as error:  # pragma: no cover - the extra is part of the test set
        raise ConfigError(
            [Problem("tracing", None, f"OpenTelemetry export needs tuner[tracing] ({error})")]
        ) from None
    return trace_api, sdk_trace, resources, status


def to_otel(traces: Iterable[Trace], service: str = "tuner-local") -> list[Any]:
    """The SDK's ReadableSpans of the traces: one per span, with ids, parents and status."""
    trace_api, sdk_trace, resources, status = _sdk()
    spans = []
    for trace in traces:
        resource = resources.Resource.create({"service.name": service, "faas.name": trace.function})
        trace_id = int(trace.trace_id, 16)
        for span in trace.spans:
            spans.append(_span(trace, span, trace_id, resource, trace_api, sdk_trace, status))
    return spans


def _span(
    trace: Trace,
    span: Span,
    trace_id: int,
    resource: Any,
    trace_api: Any,
    sdk_trace: Any,
    status: Any,
) -> Any:
    context = trace_api.SpanContext(
        trace_id, int(span.span_id, 16), is_remote=False, trace_flags=trace_api.TraceFlags(1)
    )
    parent = (
        trace_api.SpanContext(trace_id, int(span.parent_id, 16), is_remote=span.kind == "function")
        if span.parent_id
        else None
    )
    attributes: dict[str, Any] = dict(span.attributes)
    if span.kind == "function":
        attributes["tuner.revision"] = trace.revision
        if trace.exception is not None:
            attributes["code.filepath"] = trace.exception.file
            attributes["code.lineno"] = trace.exception.line
            attributes["code.function"] = trace.exception.function
        if trace.memory is not None:
            attributes["tuner.memory.peak_mb"] = trace.memory.peak_mb
            if trace.memory.need_mb is not None:
                attributes["tuner.memory.need_mb"] = trace.memory.need_mb
    kind = trace_api.SpanKind.SERVER if span.kind == "function" else trace_api.SpanKind.CLIENT
    code = status.StatusCode.ERROR if span.error else status.StatusCode.OK
    return sdk_trace.ReadableSpan(
        name=span.name,
        context=context,
        parent=parent,
        resource=resource,
        attributes=attributes,
        kind=kind,
        status=status.Status(code, span.error or None),
        start_time=int(span.start * _NS),
        end_time=int(span.end * _NS),
    )


def export_http(traces: Sequence[Trace], endpoint: str, timeout_s: float = 10.0) -> bool:
    """Send the traces over OTLP/HTTP (``endpoint`` ends in ``/v1/traces``); True on success."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=timeout_s)
    try:
        result = exporter.export(to_otel(traces))
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call]
    return bool(result is SpanExportResult.SUCCESS)


def otlp_json(traces: Sequence[Trace]) -> dict[str, Any]:
    """The traces as one OTLP/JSON ``ExportTraceServiceRequest``."""
    from google.protobuf import json_format
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    message = encode_spans(to_otel(traces))
    data: dict[str, Any] = json_format.MessageToDict(message)
    for resource in data.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:  # OTLP/JSON writes ids in hex, protobuf's JSON in base64
                        span[key] = base64.b64decode(span[key]).hex()
    return data


def write_json(traces: Sequence[Trace], path: Path) -> Path:
    """Write the traces as an OTLP/JSON file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(otlp_json(traces), indent=1), encoding="utf-8")
    return path


class OtlpForwarder:
    """Sends every finished trace to a collector in the background (the SDK's batching)."""

    def __init__(self, endpoint: str) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        _sdk()
        self.endpoint = endpoint
        self._processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint))

    def __call__(self, trace: Trace) -> None:
        """Queue a trace's spans for export."""
        for span in to_otel([trace]):
            self._processor.on_end(span)

    def close(self) -> None:
        """Export what is queued and stop."""
        self._processor.shutdown()  # type: ignore[no-untyped-call]
