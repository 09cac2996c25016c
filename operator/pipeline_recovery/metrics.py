"""Prometheus metrics of design.md, on the project's own registry; labels stay low-cardinality."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

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


def serve(port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from the pod IP
    """Expose the registry over HTTP on a background thread."""
    start_http_server(port, addr=addr, registry=REGISTRY)
