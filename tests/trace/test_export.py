"""OpenTelemetry export to a real OTLP/HTTP receiver, OTLP/JSON files, topology output."""

from __future__ import annotations

import gzip
import json
import random
import threading
import xml.etree.ElementTree as ElementTree
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tuner.mining.timing import Interval
from tuner.trace.model import Span, Trace
from tuner.trace.otel import export_http, otlp_json, write_json
from tuner.trace.topology import from_timing, from_traces, merge, to_dot, to_svg

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def upload_trace() -> list[Trace]:
    """upload calls object-store (fails once) and invokes resize, in one trace."""
    root, invoke, resize_root = "b7ad6b7169203331", "00f067aa0ba902b7", "53995c3f42cd8ad8"
    upload = Trace(
        trace_id=TRACE_ID,
        span_id=root,
        function="upload",
        start=100.0,
        end=100.5,
        outcome="ok",
        spans=(
            Span(root, "", "upload", "function", 100.0, 100.5),
            Span(
                "1111111111111111",
                root,
                "object-store.get",
                "dependency",
                100.01,
                100.03,
                attributes={"peer.service": "object-store"},
            ),
            Span(
                "2222222222222222",
                root,
                "object-store.get",
                "dependency",
                100.04,
                100.10,
                error="ConnectionRefusedError",
                attributes={"peer.service": "object-store"},
            ),
            Span(
                invoke,
                root,
                "invoke resize",
                "invoke",
                100.1,
                100.4,
                attributes={"faas.invoked_name": "resize"},
            ),
        ),
    )
    resize = Trace(
        trace_id=TRACE_ID,
        span_id=resize_root,
        parent_span_id=invoke,
        function="resize",
        start=100.11,
        end=100.39,
        outcome="ok",
        spans=(Span(resize_root, invoke, "resize", "function", 100.11, 100.39),),
    )
    return [upload, resize]


class _Receiver(BaseHTTPRequestHandler):
    """A collector's OTLP/HTTP endpoint: keeps every decoded request."""

    received: list[ExportTraceServiceRequest] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server interface
        body = self.rfile.read(int(self.headers["Content-Length"]))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        self.received.append(message)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    received: list[ExportTraceServiceRequest] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", received
    server.shutdown()
    server.server_close()


def test_otlp_export_is_received_and_decoded(
    collector: tuple[str, list[ExportTraceServiceRequest]],
) -> None:
    url, received = collector
    assert export_http(upload_trace(), url)
    spans = {
        span.name: (span, resource)
        for message in received
        for resource in message.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    }
    assert set(spans) == {"upload", "object-store.get", "invoke resize", "resize"}
    assert {span.trace_id.hex() for span, _ in spans.values()} == {TRACE_ID}
    upload, resource = spans["upload"]
    resize, _ = spans["resize"]
    invoke, _ = spans["invoke resize"]
    assert upload.parent_span_id == b"" and invoke.parent_span_id == upload.span_id
    assert resize.parent_span_id == invoke.span_id
    attributes = {a.key: a.value.string_value for a in resource.resource.attributes}
    assert attributes["faas.name"] == "upload" and attributes["service.name"] == "tuner-local"
    assert (resize.end_time_unix_nano - resize.start_time_unix_nano) == pytest.approx(
        280e6, rel=1e-3
    )


def test_otlp_export_to_a_dead_collector_reports_failure() -> None:
    assert not export_http(upload_trace(), "http://127.0.0.1:9/v1/traces", timeout_s=1.0)


def test_otlp_json_files_use_hex_ids(tmp_path: Path) -> None:
    data = otlp_json(upload_trace())
    spans = [s for r in data["resourceSpans"] for sc in r["scopeSpans"] for s in sc["spans"]]
    assert {s["traceId"] for s in spans} == {TRACE_ID}
    assert {s["spanId"] for s in spans} >= {"b7ad6b7169203331", "00f067aa0ba902b7"}
    failed = [
        s
        for s in spans
        if s["name"] == "object-store.get"
        and s.get("status", {}).get("code") == "STATUS_CODE_ERROR"
    ]
    assert len(failed) == 1
    path = write_json(upload_trace(), tmp_path / "out" / "traces.json")
    assert json.loads(path.read_text()) == data


def test_topology_from_traces_has_the_calls_latency_and_errors() -> None:
    topology = from_traces(upload_trace())
    assert {(n.id, n.kind) for n in topology.nodes} == {
        ("upload", "function"),
        ("resize", "function"),
        ("object-store", "dependency"),
    }
    store = topology.edge("upload", "object-store")
    assert store is not None and store.calls == 2 and store.error_rate == 0.5
    assert store.p50_ms == pytest.approx(20.0) and store.p95_ms == pytest.approx(60.0)
    assert store.evidence == "trace" and store.confidence == 1.0
    data = topology.as_json()
    assert set(data) == {"nodes", "edges"}
    assert set(data["edges"][0]) == {
        "source",
        "target",
        "calls",
        "p50_ms",
        "p95_ms",
        "error_rate",
        "confidence",
        "evidence",
    }


def test_dot_and_svg_draw_every_edge() -> None:
    starts = [i * 2.0 + random.Random(i).uniform(0.0, 1.5) for i in range(30)]
    timing = from_timing(
        [Interval("batch", t, t + 0.5) for t in starts]
        + [Interval("reports", t + 0.1, t + 0.3) for t in starts],
        {},
    )
    topology = merge(from_traces(upload_trace()), timing)
    dot = to_dot(topology)
    assert '"upload" -> "object-store"' in dot and '"batch" -> "reports"' in dot
    assert "style=dashed" in dot  # the timing edge
    assert "timing, confidence 0.9" in dot  # with its confidence, never 1.00
    svg = ElementTree.fromstring(to_svg(topology).encode())
    titles = {t.text for t in svg.iter("{http://www.w3.org/2000/svg}title")}
    assert {"upload->object-store", "upload->resize", "batch->reports"} <= titles
