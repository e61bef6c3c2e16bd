"""A tiny OTLP/HTTP receiver for the benchmark: counts the spans and metric points it is sent.

`python -m bench.otlp_sink --listen 127.0.0.1:0` prints `listening on http://HOST:PORT`;
POST /v1/traces takes ExportTraceServiceRequest protobuf, POST /v1/metrics
ExportMetricsServiceRequest; GET /count answers
`{"requests": N, "spans": M, "metric_requests": R, "metric_points": P}`.
"""

from __future__ import annotations

import argparse

from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

PROTOBUF = "application/x-protobuf"
COUNTS = web.AppKey("counts", dict[str, int])


async def _traces(request: web.Request) -> web.Response:
    message = ExportTraceServiceRequest.FromString(await request.read())
    counts = request.app[COUNTS]
    counts["requests"] += 1
    counts["spans"] += sum(
        len(scope.spans) for resource in message.resource_spans for scope in resource.scope_spans
    )
    return web.Response(
        body=ExportTraceServiceResponse().SerializeToString(), content_type=PROTOBUF
    )


async def _metrics(request: web.Request) -> web.Response:
    message = ExportMetricsServiceRequest.FromString(await request.read())
    counts = request.app[COUNTS]
    counts["metric_requests"] += 1
    counts["metric_points"] += sum(
        len(getattr(metric, metric.WhichOneof("data")).data_points)
        for resource in message.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    )
    return web.Response(
        body=ExportMetricsServiceResponse().SerializeToString(), content_type=PROTOBUF
    )


async def _count(request: web.Request) -> web.Response:
    return web.json_response(request.app[COUNTS])


def build_app() -> web.Application:
    """The receiver's aiohttp application."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[COUNTS] = {"requests": 0, "spans": 0, "metric_requests": 0, "metric_points": 0}
    app.router.add_post("/v1/traces", _traces)
    app.router.add_post("/v1/metrics", _metrics)
    app.router.add_get("/count", _count)
    return app


def main() -> None:
    """`python -m bench.otlp_sink`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:0")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    web.run_app(
        build_app(),
        host=host,
        port=int(port),
        access_log=None,
        print=lambda _: None,
        handle_signals=True,
    )


if __name__ == "__main__":
    main()
