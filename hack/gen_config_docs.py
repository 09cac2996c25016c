"""Generate docs/configuration.md from pipeline_recovery.settings.Settings, the one source.

Usage: .venv/bin/python hack/gen_config_docs.py [--check]
A field's meaning comes from its pydantic `description=` when it has one, else from MEANINGS
below; tests/contract/test_docs.py fails when a setting has neither or the file is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from pipeline_recovery.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "configuration.md"
PREFIX = "PIPELINE_RECOVERY_"

MEANINGS: dict[str, str] = {
    "namespaces": "Namespaces to watch, comma-separated (`run --namespace NS` sets it). "
    "Empty: every namespace, cluster-wide.",
    "all_namespaces": "Watch every namespace (the Deployment passes `--all-namespaces`).",
    "opt_out_label": "Jobs and Pods carrying this label (any value) are never turned into "
    "incidents.",
    "watch_selector": "Label selector in `kubectl -l` syntax (`app=web,tier in (build,test),"
    "!skip`); only Jobs and Pods whose own labels match become incidents. Empty: all.",
    "pod_grace_seconds": "How long a Pod may sit in CrashLoopBackOff, ImagePullBackOff, "
    "ErrImagePull or CreateContainerConfigError before it counts as failed.",
    "log_limit_bytes": "Most bytes of log read per container (`limitBytes`).",
    "log_tail_lines": "Most trailing log lines read per container (`tailLines`).",
    "inline_log_max_bytes": "Largest `spec.log.text` accepted on a user-created PipelineRecovery.",
    "extra_pattern_files": "Extra pattern-table YAML files, comma-separated, loaded after the "
    "built-in table.",
    "scan_engine": "Regex engine for the pattern table: `auto` picks native (the project's C "
    "loop over libhs, when it was built), then the hyperscan binding, then re2, then Python's "
    "`re`.",
    "llm_base_url": "OpenAI-compatible endpoint for AI analysis (HolySheep AI by default).",
    "llm_api_key": "API key for the LLM endpoint; `HOLYSHEEP_API_KEY` is accepted too. "
    "Unset: AI analysis is disabled and the pattern table decides alone.",
    "llm_model": "Model name sent to the endpoint.",
    "llm_timeout_seconds": "Timeout of one LLM request.",
    "llm_max_retries": "Retries of a failed LLM request (timeouts, 429, 5xx).",
    "llm_retry_backoff_seconds": "Base of the jittered exponential backoff between LLM retries.",
    "llm_concurrency": "Most LLM requests in flight at once.",
    "llm_max_prompt_tokens": "Prompt budget per request; log excerpts are cut to fit.",
    "llm_max_completion_tokens": "Most tokens the model may answer with.",
    "llm_temperature": "Sampling temperature (low: repeatable diagnoses).",
    "llm_tokens_per_hour": "Token budget per hour; past it, analyses are skipped "
    "(`skipped_budget`). 0 disables AI analysis.",
    "llm_tokens_per_day": "Token budget per day, as above.",
    "llm_cost_usd_per_day": "Spend budget per day in US dollars, from `LLM_PRICES`.",
    "llm_prices": "USD per million tokens as `model=input:output,...`; unknown models "
    "count as free and say so.",
    "llm_cache_size": "Entries in the fingerprint cache of AI answers (0: no cache).",
    "llm_cache_ttl_seconds": "How long a cached AI answer is reused.",
    "llm_circuit_failures": "Consecutive LLM failures that open the circuit breaker.",
    "llm_circuit_reset_seconds": "How long the open circuit waits before one trial request.",
    "ai_mode": "Default of `spec.analysis.ai`: `Auto` asks the LLM only when the pattern "
    "table is unsure, `Always`, or `Never`.",
    "ai_confidence_threshold": "In `Auto`, a pattern verdict below this confidence goes to "
    "the LLM.",
    "remediation_mode": "Default of `spec.remediation.mode`: `Auto`, `Manual` (wait for "
    "approval) or `Off`.",
    "remediation_mode_by_namespace": "Per-namespace defaults as `ns=Mode,...`, overriding "
    "`REMEDIATION_MODE`.",
    "remediation_max_attempts": "Most remediation attempts per incident (retries of retries "
    "count against the original).",
    "remediation_cooldown_seconds": "Quiet time per target and per fingerprint between "
    "remediations.",
    "remediation_backoff_seconds": "Base of the exponential backoff between retries of "
    "transient failures.",
    "remediation_namespace_jobs_per_minute": "Most remediation Jobs started per namespace "
    "per minute (a failure storm cannot start a Job storm).",
    "remediation_memory_factor": "`retry-with-more-memory` multiplies the failed "
    "container's memory request and limit by this.",
    "remediation_memory_cap": "Highest memory limit `retry-with-more-memory` sets.",
    "remediation_storage_factor": "`retry-with-more-storage` multiplies ephemeral-storage by this.",
    "remediation_storage_cap": "Highest ephemeral-storage limit it sets.",
    "remediation_deadline_factor": "`retry-with-longer-deadline` multiplies "
    "`activeDeadlineSeconds` by this.",
    "remediation_deadline_cap_seconds": "Highest `activeDeadlineSeconds` it sets.",
    "remediation_image": "Image of the operator's own helper Jobs (`create-directory`, "
    "`clear-cache`); pin it by digest in production.",
    "remediation_job_deadline_seconds": "`activeDeadlineSeconds` of those helper Jobs.",
    "metrics_port": "Port of the Prometheus metrics endpoint (0: off).",
    "log_format": "`text` or `json` (one object a line, with the PipelineRecovery name and "
    "category).",
    "log_level": "Operator log level.",
    "peering_name": "Name of kopf's (Cluster)KopfPeering object the replicas coordinate "
    "through; keep it equal to the object in manifests/manager/peering.yaml and the "
    "`resourceNames` in manifests/rbac/peering_role.yaml.",
    "standalone": "Run without peering (one replica only; `run --standalone` does the same).",
}


def env_name(name: str) -> str:
    return PREFIX + name.upper()


def _aliases(field: FieldInfo, name: str) -> list[str]:
    choices = getattr(field.validation_alias, "choices", None) or []
    return [str(c) for c in choices if isinstance(c, str) and c != env_name(name)]


def _format_default(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "(empty)"
    if isinstance(value, dict):
        parts = []
        for key, val in value.items():
            rendered = ":".join(f"{v:g}" for v in val) if isinstance(val, tuple) else str(val)
            parts.append(f"{key}={rendered}")
        return ",".join(parts) or "(empty)"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _bounds(field: FieldInfo) -> str:
    marks = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    out = []
    for meta in field.metadata:
        for attr, sign in marks.items():
            bound = getattr(meta, attr, None)
            if bound is not None:
                out.append(f"{sign} {bound:g}" if isinstance(bound, float) else f"{sign} {bound}")
    annotation = str(field.annotation)
    if "Literal[" in annotation:
        values = annotation.split("Literal[", 1)[1].rsplit("]", 1)[0].replace("'", "")
        out.append("one of " + values.replace(", ", " / "))
    return ", ".join(out)


def meaning(name: str, field: FieldInfo) -> str | None:
    return field.description or MEANINGS.get(name)


def missing_meanings() -> list[str]:
    return [env_name(n) for n, f in Settings.model_fields.items() if not meaning(n, f)]


def render() -> str:
    lines = [
        "# Configuration",
        "",
        "<!-- Generated by hack/gen_config_docs.py from pipeline_recovery.settings.Settings;",
        "     edit the generator (or the field's description), not this file. -->",
        "",
        "Every setting is an environment variable (pydantic-settings). A bad value stops",
        "start-up with one line naming the variable. In the cluster, set them in the",
        "Deployment's `env` (manifests/manager/manager.yaml); the LLM key comes from the",
        "Secret `pipeline-recovery-llm` (manifests/samples/llm-secret.example.yaml).",
        "Lists are comma-separated; maps are `key=value,...`.",
        "",
        "| Variable | Default | Allowed | Meaning |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        factory = field.default_factory
        default = factory() if factory else field.default  # type: ignore[call-arg]
        variable = f"`{env_name(name)}`"
        aliases = _aliases(field, name)
        if aliases:
            variable += " (also " + ", ".join(f"`{a}`" for a in aliases) + ")"
        text = (meaning(name, field) or "UNDOCUMENTED").replace("|", "\\|")
        default_text = _format_default(default).replace("|", "\\|")
        lines.append(f"| {variable} | `{default_text}` | {_bounds(field)} | {text} |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = render()
    missing = missing_meanings()
    if missing:
        print("settings without a meaning (add to MEANINGS): " + ", ".join(missing))
        return 1
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run hack/gen_config_docs.py")
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({len(Settings.model_fields)} settings)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
