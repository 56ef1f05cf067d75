"""Prometheus metrics at /metrics: the queue (from the database) and this process's HTTP traffic."""

from __future__ import annotations

import time
from collections.abc import Iterable

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.deps import DbDep, ReaderDep, SettingsDep
from service.core import metrics as core_metrics

router = APIRouter(tags=["operations"])

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """Request counters and latency of one app (a registry per app, so tests never share state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "sweeps_http_requests",
            "HTTP requests answered, by method, route template and status",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "sweeps_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ("method", "route"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )


class HttpMetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware: it buffers streaming bodies and breaks with cancellation)."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        t0 = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The route template, never the raw path: ids and injected junk in
            # paths must not become unbounded label values.
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - t0)


def install(app: FastAPI) -> None:
    """Called by the app factory: count every request this app answers."""
    metrics = HttpMetrics()
    app.state.http_metrics = metrics
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)


class _Snapshot:
    """A one-shot collector over a queue snapshot taken by the request."""

    def __init__(self, snap: core_metrics.QueueSnapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterable[Metric]:
        snap = self.snap
        depth = GaugeMetricFamily("sweeps_queue_depth", "Configurations waiting in queued or running sweeps")
        depth.add_metric([], snap.queue_depth)
        yield depth
        configs = GaugeMetricFamily(
            "sweeps_configs",
            "Configurations by the state of their sweep and their own state",
            labels=["sweep_state", "state"],
        )
        for (sweep_state, state), n in sorted(snap.configs.items()):
            configs.add_metric([sweep_state, state], n)
        yield configs
        sweeps = GaugeMetricFamily("sweeps_sweeps", "Sweeps by state", labels=["state"])
        for state, n in sorted(snap.sweeps.items()):
            sweeps.add_metric([state], n)
        yield sweeps
        runs = GaugeMetricFamily(
            "sweeps_runs", "Runs (configuration x seed) by status and class", labels=["status", "run_class"]
        )
        for (status, cls), n in sorted(snap.runs.items()):
            runs.add_metric([status, cls], n)
        yield runs
        h = snap.durations
        durations = HistogramMetricFamily(
            "sweeps_trial_duration_seconds",
            "Claim-to-finish time of finished configurations (all seeds of a trial)",
        )
        durations.add_metric([], [(_le(b), n) for b, n in h.buckets], sum_value=h.total)
        yield durations
        live = GaugeMetricFamily("sweeps_workers_live", "Workers whose heartbeat is within the grace period")
        live.add_metric([], len(snap.workers))
        yield live
        age = GaugeMetricFamily(
            "sweeps_worker_heartbeat_age_seconds",
            "Seconds since each live worker's last heartbeat",
            labels=["worker", "device", "state"],
        )
        for w in snap.workers:
            age.add_metric([w.worker_id, w.device, w.state], w.age_s)
        yield age


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
            "description": "Prometheus text",
        }
    },
)
def metrics(request: Request, db: DbDep, settings: SettingsDep, _: ReaderDep) -> Response:
    """Prometheus text format: queue depth, configurations and runs by state, trial durations,
    live workers and their heartbeat age (from the database), and this process's HTTP requests."""
    with db.transaction() as s:
        snap = core_metrics.snapshot(s, grace_s=settings.heartbeat_grace_s)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(snap))
    body = generate_latest(registry)
    http: HttpMetrics | None = getattr(request.app.state, "http_metrics", None)
    if http is not None:
        body += generate_latest(http.registry)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
