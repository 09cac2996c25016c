"""Prometheus metrics of design.md, on the project's own registry; labels stay low-cardinality."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

from pipeline_recovery import __version__

# The *_created series double the series count and no alert or dashboard reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry(auto_describe=True)
PREFIX = "pipeline_recovery_"

_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_SLOW = (30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0)

FAILURES_DETECTED = Counter(
    PREFIX + "failures_detected_total",
    "Failed pipeline Jobs and Pods turned into incidents.",
    ["kind", "category", "severity"],
    registry=REGISTRY,
)
DIAGNOSES = Counter(
    PREFIX + "diagnoses_total",
    "Diagnoses written, by where the verdict came from.",
    ["source", "category"],
    registry=REGISTRY,
)
DIAGNOSIS_DURATION = Histogram(
    PREFIX + "diagnosis_duration_seconds",
    "Time from picking up an incident to its diagnosis in status.",
    buckets=_FAST,
    registry=REGISTRY,
)
REMEDIATIONS = Counter(
    PREFIX + "remediations_total",
    "Remediation actions, by action and result (started, succeeded, failed, refused).",
    ["action", "result"],
    registry=REGISTRY,
)
RECOVERIES = Counter(
    PREFIX + "recoveries_total",
    "Incidents that ended, by result (recovered, failed, manual).",
    ["result"],
    registry=REGISTRY,
)
RECOVERY_DURATION = Histogram(
    PREFIX + "recovery_duration_seconds",
    "Time from the failure being seen to the pipeline recovering.",
    buckets=_SLOW,
    registry=REGISTRY,
)
LLM_REQUESTS = Counter(
    PREFIX + "llm_requests_total",
    "Requests to the LLM endpoint, by outcome (ok, invalid, error, timeout, rate_limited, "
    "circuit_open, budget_exhausted).",
    ["model", "outcome"],
    registry=REGISTRY,
)
LLM_REQUEST_DURATION = Histogram(
    PREFIX + "llm_request_duration_seconds",
    "Latency of LLM requests, retries included.",
    buckets=_FAST,
    registry=REGISTRY,
)
LLM_TOKENS = Counter(
    PREFIX + "llm_tokens_total",
    "Tokens used, by direction (prompt, completion).",
    ["model", "direction"],
    registry=REGISTRY,
)
LLM_COST = Counter(
    PREFIX + "llm_cost_usd_total",
    "Estimated LLM spend in US dollars.",
    ["model"],
    registry=REGISTRY,
)
LLM_CACHE_HITS = Counter(
    PREFIX + "llm_cache_hits_total",
    "AI analyses answered from the fingerprint cache or an in-flight twin.",
    registry=REGISTRY,
)
INCIDENTS = Gauge(
    PREFIX + "incidents",
    "PipelineRecovery objects known to this operator, by phase.",
    ["phase"],
    registry=REGISTRY,
)


BUILD_INFO = Gauge(
    PREFIX + "build_info",
    "Always 1; the running operator's version (absent when the operator is not scraped).",
    ["version"],
    registry=REGISTRY,
)
BUILD_INFO.labels(version=__version__).set(1)

# Every phase of design.md's status.phase, so the incidents gauge exports zeros instead of
# leaving a phase's last value behind when no incident is in it any more.
PHASES = (
    "Pending",
    "Collecting",
    "Diagnosing",
    "Diagnosed",
    "AwaitingApproval",
    "Remediating",
    "Recovered",
    "RemediationFailed",
    "ManualActionRequired",
    "Error",
)


def prime() -> None:
    """Export 0 for every label combination known up front (kinds x categories, results).

    A counter child created by its first inc() starts life at 1, and rate()/increase() never
    see that first event; alerts on the first failures of a category would miss them.
    """
    from pipeline_recovery.taxonomy import CATEGORIES

    for category, row in CATEGORIES.items():
        for kind in ("Job", "Pod", "Inline"):
            FAILURES_DETECTED.labels(kind=kind, category=category, severity=str(row.severity))
        for source in ("patterns", "ai", "cache"):
            DIAGNOSES.labels(source=source, category=category)
    for result in ("recovered", "failed", "manual"):
        RECOVERIES.labels(result=result)
    set_incident_phases({})


def set_incident_phases(counts: Mapping[str, int]) -> None:
    """Set the incidents gauge for every phase at once (phases missing from counts become 0)."""
    for phase in (*PHASES, *(p for p in counts if p not in PHASES)):
        INCIDENTS.labels(phase=phase).set(counts.get(phase, 0))


@dataclass
class MetricsServer:
    """A running metrics endpoint; `port` is the bound port (useful when asked for port 0)."""

    server: WSGIServer
    thread: Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        """Stop serving and release the port (tests and in-process restarts)."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_server(port: int, addr: str = "0.0.0.0") -> MetricsServer:  # noqa: S104 - pod IP
    """Expose the registry on a background thread and return a handle that can stop it."""
    server, thread = start_http_server(port, addr=addr, registry=REGISTRY)
    return MetricsServer(server, thread)


def serve(port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from the pod IP
    """Expose the registry over HTTP on a background thread."""
    start_server(port, addr=addr)


prime()
