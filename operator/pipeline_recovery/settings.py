"""Typed operator settings from PIPELINE_RECOVERY_* environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

RemediationMode = Literal["Auto", "Manual", "Off"]
AIMode = Literal["Auto", "Always", "Never"]


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _split_csv(value: object) -> object:
    return _csv(value) if isinstance(value, str) else value


class Settings(BaseSettings):
    """Every knob of the operator; each field maps to PIPELINE_RECOVERY_<NAME>."""

    model_config = SettingsConfigDict(
        env_prefix="PIPELINE_RECOVERY_", extra="ignore", frozen=True, populate_by_name=True
    )

    # --- scope -----------------------------------------------------------------------------
    namespaces: Annotated[list[str], NoDecode] = Field(default_factory=list)
    all_namespaces: bool = False
    opt_out_label: str = "pipelinerecovery.dev/ignore"
    watch_selector: str = ""  # kubectl -l syntax; only matching Jobs and Pods become incidents
    pod_grace_seconds: float = Field(default=60.0, ge=0)

    # --- log collection & classification ---------------------------------------------------
    log_limit_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=512 * 1024 * 1024)
    log_tail_lines: int = Field(default=20000, ge=10, le=1_000_000)
    inline_log_max_bytes: int = Field(default=256 * 1024, ge=1024, le=1024 * 1024)
    extra_pattern_files: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    scan_engine: Literal["auto", "native", "hyperscan", "re2", "re"] = "auto"

    # --- LLM analysis ----------------------------------------------------------------------
    llm_base_url: str = "https://api.holysheep.ai/v1"
    llm_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("PIPELINE_RECOVERY_LLM_API_KEY", "HOLYSHEEP_API_KEY"),
    )
    llm_model: str = "gpt-4.1"
    llm_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    llm_max_retries: int = Field(default=3, ge=0, le=10)
    llm_retry_backoff_seconds: float = Field(default=1.0, ge=0, le=60)  # doubles, jittered
    llm_concurrency: int = Field(default=4, ge=1, le=256)
    llm_max_prompt_tokens: int = Field(default=3000, ge=256, le=200_000)
    llm_max_completion_tokens: int = Field(default=800, ge=64, le=16_000)
    llm_temperature: float = Field(default=0.1, ge=0, le=2)
    llm_tokens_per_hour: int = Field(default=200_000, ge=0)
    llm_tokens_per_day: int = Field(default=2_000_000, ge=0)
    llm_cost_usd_per_day: float = Field(default=20.0, ge=0)
    # USD per million tokens, "model=input:output,..."; unknown models cost 0 and say so.
    llm_prices: Annotated[dict[str, tuple[float, float]], NoDecode] = Field(
        default_factory=lambda: {
            "gpt-4.1": (2.0, 8.0),
            "gpt-4.1-mini": (0.4, 1.6),
            "gpt-4o": (2.5, 10.0),
            "gpt-4o-mini": (0.15, 0.6),
        }
    )
    llm_cache_size: int = Field(default=1024, ge=0, le=1_000_000)
    llm_cache_ttl_seconds: float = Field(default=6 * 3600.0, ge=0)
    llm_circuit_failures: int = Field(default=5, ge=1, le=1000)
    llm_circuit_reset_seconds: float = Field(default=60.0, gt=0)
    ai_mode: AIMode = "Auto"
    ai_confidence_threshold: float = Field(default=0.6, ge=0, le=1)

    # --- remediation -----------------------------------------------------------------------
    remediation_mode: RemediationMode = "Auto"
    remediation_mode_by_namespace: Annotated[dict[str, RemediationMode], NoDecode] = Field(
        default_factory=dict
    )
    remediation_max_attempts: int = Field(default=3, ge=0, le=10)
    remediation_cooldown_seconds: float = Field(default=300.0, ge=0)
    remediation_backoff_seconds: float = Field(default=10.0, ge=0)
    remediation_namespace_jobs_per_minute: int = Field(default=10, ge=1, le=1000)
    remediation_memory_factor: float = Field(default=1.5, gt=1, le=8)
    remediation_memory_cap: str = "8Gi"
    remediation_storage_factor: float = Field(default=2.0, gt=1, le=8)
    remediation_storage_cap: str = "20Gi"
    remediation_deadline_factor: float = Field(default=2.0, gt=1, le=8)
    remediation_deadline_cap_seconds: int = Field(default=4 * 3600, ge=60)
    remediation_image: str = "busybox:1.36.1"
    remediation_job_deadline_seconds: int = Field(default=300, ge=10, le=3600)

    # --- observability ---------------------------------------------------------------------
    metrics_port: int = Field(default=8080, ge=0, le=65535)
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # --- high availability -----------------------------------------------------------------
    peering_name: str = "pipeline-recovery"
    standalone: bool = False

    @field_validator("namespaces", "extra_pattern_files", mode="before")
    @classmethod
    def _csv_list(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("remediation_mode_by_namespace", mode="before")
    @classmethod
    def _ns_modes(cls, value: object) -> object:
        if isinstance(value, str):
            pairs = (item.split("=", 1) for item in _csv(value))
            return {ns.strip(): mode.strip() for ns, mode in pairs}
        return value

    @field_validator("llm_prices", mode="before")
    @classmethod
    def _prices(cls, value: object) -> object:
        if isinstance(value, str):
            out: dict[str, tuple[float, float]] = {}
            for item in _csv(value):
                model, _, rates = item.partition("=")
                prompt, _, completion = rates.partition(":")
                out[model.strip()] = (float(prompt), float(completion))
            return out
        return value

    @field_validator("watch_selector")
    @classmethod
    def _selector(cls, value: str) -> str:
        from pipeline_recovery.selectors import parse_selector

        parse_selector(value)  # SelectorError is a ValueError: start-up stops naming the field
        return value

    @field_validator("llm_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    def mode_for(self, namespace: str) -> RemediationMode:
        """The default remediation mode in a namespace (resource spec may override)."""
        return self.remediation_mode_by_namespace.get(namespace, self.remediation_mode)


class SettingsError(Exception):
    """A setting is invalid; the message is one line naming it."""


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise SettingsError naming the first bad setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(part) for part in err["loc"]) or "settings"
        name = loc if loc.isupper() else f"PIPELINE_RECOVERY_{loc.upper()}"
        raise SettingsError(f"invalid setting {name}: {err['msg']}") from None
