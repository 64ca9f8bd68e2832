"""A minimal OTLP/HTTP metrics receiver on the loopback, in the caller's own process.

`make bench` gives each server one, so the app's export path runs in full
(collect, encode, one HTTP request per export) while the receiver's CPU stays
out of the app's figures; the tests give the apps they build one, to read what
was exported. It keeps each series' newest point: under cumulative temporality
that is its total, and the totals of all instances add up to what every process
recorded.

    with OtlpSink() as sink:   # sink.url: OTEL_EXPORTER_OTLP_METRICS_ENDPOINT
        ...
        sink.total("http.server.request.duration", {"http.route": "/"})
"""

import os
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.semconv.attributes.service_attributes import SERVICE_INSTANCE_ID

from ..settings import LOOPBACK

PATH = "/v1/metrics"  # the OTLP/HTTP path of metrics


class Point(NamedTuple):
    """The newest data point of one series: a histogram's count, or a sum's value."""

    instance: str  # the exporting process's service.instance.id
    metric: str
    attributes: frozenset
    value: float


class OtlpSink:
    """Receive OTLP/HTTP metric exports; answer `answer` (503 plays a receiver that is down)."""

    def __init__(self, avoid_cpu: int | None = None):
        self.exports = 0
        self.answer = 200
        self.units: dict[str, str] = {}  # metric -> its unit
        self.bounds: dict[str, list[float]] = {}  # histogram -> its bucket edges
        self._latest: dict[tuple, Point] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((LOOPBACK, 0), _Handler)
        self._server.sink = self
        self.url = f"http://{LOOPBACK}:{self._server.server_port}{PATH}"
        # `avoid_cpu`: the bench pins the app to one CPU; the sink serves from the others.
        cpus = os.sched_getaffinity(0) - {avoid_cpu} if avoid_cpu is not None else None
        threading.Thread(target=self._serve, args=(cpus or None,), daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _serve(self, cpus: set[int] | None) -> None:
        if cpus is not None:  # this thread only; its connection threads inherit it
            os.sched_setaffinity(0, cpus)
        self._server.serve_forever()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def receive(self, export: ExportMetricsServiceRequest) -> None:
        with self._lock:
            self.exports += 1
            for resource_metrics in export.resource_metrics:
                resource = {kv.key: kv.value.string_value for kv in resource_metrics.resource.attributes}
                instance = resource.get(SERVICE_INSTANCE_ID, "")
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        self._keep(instance, metric)

    def _keep(self, instance: str, metric) -> None:
        self.units[metric.name] = metric.unit
        kind = metric.WhichOneof("data")
        for point in getattr(metric, kind).data_points:
            attributes = frozenset((kv.key, _value(kv.value)) for kv in point.attributes)
            if kind == "histogram":
                value = point.count
                self.bounds[metric.name] = list(point.explicit_bounds)
            else:
                value = _value(point)
            point = Point(instance, metric.name, attributes, value)
            self._latest[(instance, metric.name, attributes)] = point

    def points(self, metric: str) -> list[Point]:
        with self._lock:
            return [point for point in self._latest.values() if point.metric == metric]

    def total(self, metric: str, attributes: dict | None = None) -> float:
        """The sum over instances of the newest value of every series that has these attributes."""
        wanted = set((attributes or {}).items())
        return sum(point.value for point in self.points(metric) if wanted <= point.attributes)

    def instances(self) -> set[str]:
        with self._lock:
            return {point.instance for point in self._latest.values()}


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, as a real receiver: the exporter's requests session reuses its connection.
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        sink = self.server.sink
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = sink.answer if self.path == PATH else 404
        if status == 200:
            if self.headers.get("Content-Encoding") in ("gzip", "deflate"):  # OTEL_EXPORTER_OTLP_COMPRESSION
                body = zlib.decompress(body, wbits=47)  # 32 + 15: either header, detected
            sink.receive(ExportMetricsServiceRequest.FromString(body))
        # An empty body is an empty ExportMetricsServiceResponse: all accepted.
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass  # one line per export otherwise


def _value(holder):
    """An AnyValue's, or a number data point's, value, whichever field it holds."""
    return getattr(holder, holder.WhichOneof("value"))
