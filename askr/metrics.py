"""Prometheus metrics kept by the master, fed from worker stats packets.

Workers report cumulative counters (requests, errors5xx, optional status
classes) and batches of request durations.  The master turns cumulative
per-worker numbers into process-independent counters by adding only the
increase since the previous packet of the same worker, so a recycled worker
(whose counters restart at 0) never makes a counter go down.

The registry is private (not the prometheus-client global one), so several
supervisors in one test process do not collide.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# Wide enough for PHP pages (ms) and slow reports (tens of seconds).
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


class Metrics:
    """The master's metric families and the bookkeeping that feeds them."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, workers_alive: Callable[[], int]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "askr_requests", "HTTP responses sent by workers, by status class",
            ["status_class"], registry=self.registry)
        self.duration = Histogram(
            "askr_request_duration_seconds", "Time from request to response",
            buckets=DURATION_BUCKETS, registry=self.registry)
        self.alive = Gauge(
            "askr_workers_alive", "Web workers booted and accepting",
            registry=self.registry)
        self.alive.set_function(lambda: float(workers_alive()))
        self.restarts = Counter(
            "askr_worker_restarts", "Worker processes replaced, by reason",
            ["reason"], registry=self.registry)
        self.reloads = Counter(
            "askr_reloads", "Reloads finished, by outcome",
            ["outcome"], registry=self.registry)
        self._seen: dict[int, dict[str, int]] = {}

    def observe_stats(self, pid: int, message: dict[str, Any]) -> None:
        """Account one stats packet from worker ``pid``."""
        seen = self._seen.setdefault(pid, {})
        classes = message.get("status")
        if isinstance(classes, dict):
            for name, value in classes.items():
                if name in STATUS_CLASSES and isinstance(value, int):
                    self._add(seen, name, value)
        else:
            # Only the contract's two counters: split them as best we can.
            requests = _int(message.get("requests"))
            errors = _int(message.get("errors5xx"))
            self._add(seen, "5xx", errors)
            self._add(seen, "other", requests - errors)

        for value in message.get("durations") or ():
            if isinstance(value, (int, float)) and value >= 0:
                self.duration.observe(value)

    def _add(self, seen: dict[str, int], label: str, total: int) -> None:
        delta = total - seen.get(label, 0)
        if delta > 0:
            self.requests.labels(status_class=label).inc(delta)
        seen[label] = total

    def forget(self, pid: int) -> None:
        """Drop the bookkeeping of a reaped worker."""
        self._seen.pop(pid, None)

    def restart(self, reason: str) -> None:
        self.restarts.labels(reason=reason).inc()

    def reload(self, outcome: str) -> None:
        self.reloads.labels(outcome=outcome).inc()

    def render(self) -> bytes:
        """The text exposition format for GET /metrics."""
        return generate_latest(self.registry)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0
