"""Policy: which catalog action runs for which failure, and the guards around it."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

from pipeline_recovery.remediation import catalog, first_job, plan_remediation, retry_job
from pipeline_recovery.remediation.ledger import Start, StartLedger
from pipeline_recovery.remediation.policy import backoff_seconds, effective_max_attempts
from pipeline_recovery.remediation.shaping import Failure, candidate_paths, choose
from pipeline_recovery.settings import Settings
from pipeline_recovery.taxonomy import CATEGORIES

SETTINGS = Settings(
    remediation_backoff_seconds=10,
    remediation_cooldown_seconds=300,
    remediation_namespace_jobs_per_minute=3,
)


def job(memory: str = "512Mi", volumes: bool = True) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [
            {
                "name": "build",
                "image": "node:20",
                "resources": {"requests": {"memory": memory}, "limits": {"memory": memory}},
                "env": [{"name": "npm_config_cache", "value": "/workspace/.npm"}],
                "volumeMounts": [{"name": "ws", "mountPath": "/workspace"}],
            }
        ],
        "volumes": [{"name": "ws", "persistentVolumeClaim": {"claimName": "workspace"}}],
    }
    if not volumes:
        del pod_spec["volumes"], pod_spec["containers"][0]["volumeMounts"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "build-7", "namespace": "ci", "uid": "job-uid"},
        "spec": {"backoffLimit": 0, "activeDeadlineSeconds": 600, "template": {"spec": pod_spec}},
    }


def failure(category: str, **kw: Any) -> Failure:
    base: dict[str, Any] = {
        "namespace": "ci",
        "recovery": "prec-build-7",
        "recovery_uid": "prec-uid",
        "category": category,
        "fingerprint": f"fp-{category}",
        "container": "build",
        "job": job(),
    }
    base.update(kw)
    return Failure(**base)


def plan(
    f: Failure,
    spec: dict[str, Any] | None = None,
    *,
    attempts: int = 0,
    failed_at: float = 0.0,
    now: float = 1000.0,
    ledger: StartLedger | None = None,
    settings: Settings = SETTINGS,
) -> Any:
    return plan_remediation(
        f,
        settings=settings,
        spec={"remediation": {"mode": "Auto"}} if spec is None else spec,
        attempts_done=attempts,
        failed_at=failed_at,
        now=now,
        ledger=ledger or StartLedger(),
        target="build-7",
    )


# --- the category table ---------------------------------------------------------------------


def test_every_category_has_a_policy_row_of_catalog_actions() -> None:
    assert set(catalog.ALLOWED) == set(CATEGORIES)
    for actions in catalog.ALLOWED.values():
        assert all(a in catalog.CATALOG and a != catalog.NONE for a in actions)


@pytest.mark.parametrize(
    ("category", "evidence", "action"),
    [
        ("out-of-memory", "OOMKilled", catalog.MORE_MEMORY),
        ("network", "ETIMEDOUT registry.npmjs.org", catalog.RETRY),
        ("rate-limited", "HTTP 429", catalog.RETRY),
        ("evicted", "The node was low on resource", catalog.RETRY),
        ("image-pull", "i/o timeout pulling image", catalog.RETRY),
        ("image-pull", "manifest unknown", catalog.NONE),
        ("deadline-exceeded", "DeadlineExceeded", catalog.LONGER_DEADLINE),
        (
            "missing-file",
            "ENOENT: no such file or directory, scandir '/workspace/dist'",
            catalog.CREATE_DIRECTORY,
        ),
        (
            "missing-file",
            "ENOENT: no such file or directory, open '/workspace/.npm/_cacache/x'",
            catalog.CLEAR_CACHE,
        ),
        (
            # The seed's npm build: the cache directory itself is missing, so it is created.
            "missing-file",
            "npm ERR! enoent ENOENT: no such file or directory, "
            "mkdir '/workspace/node_modules/.cache'",
            catalog.CREATE_DIRECTORY,
        ),
        ("dependency-resolution", "npm ERR! code EINTEGRITY", catalog.CLEAR_CACHE),
        ("dependency-resolution", "ERESOLVE unable to resolve dependency tree", catalog.NONE),
        ("compile-error", "error TS2304", catalog.NONE),
        ("test-failure", "3 failed", catalog.NONE),
        ("auth", "E401", catalog.NONE),
        ("config-error", "CreateContainerConfigError", catalog.NONE),
        ("permission-denied", "EACCES", catalog.NONE),
        ("unknown", "", catalog.NONE),
    ],
)
def test_action_per_category(category: str, evidence: str, action: str) -> None:
    decision = plan(failure(category, evidence_text=evidence))
    assert decision.shaped.action == action
    assert decision.kind == ("manual" if action == catalog.NONE else "run")


SEED_NPM_EVIDENCE = (
    "npm ERR! enoent ENOENT: no such file or directory, mkdir '/workspace/node_modules/.cache'"
)


@pytest.mark.parametrize("suggestion", [None, catalog.CLEAR_CACHE])
def test_missing_cache_directory_is_created_not_cleared(suggestion: str | None) -> None:
    f = failure("missing-file", evidence_text=SEED_NPM_EVIDENCE, suggestion=suggestion)
    d = plan(f)
    assert d.shaped.action == catalog.CREATE_DIRECTORY
    assert dict(d.shaped.parameters) == {"claim": "workspace", "path": "node_modules/.cache"}
    assert any("nothing to clear" in n for n in d.notes)
    built = first_job(d, f, SETTINGS, root_name="build-7", root_uid="u")
    assert built["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "mkdir",
        "-p",
        "--",
        "/mnt/target/node_modules/.cache",
    ]


def test_missing_file_directory_params() -> None:
    d = plan(
        failure(
            "missing-file",
            evidence_text="ENOENT: no such file or directory, scandir '/workspace/dist'",
        )
    )
    assert dict(d.shaped.parameters) == {"claim": "workspace", "path": "dist"}
    built = first_job(d, failure("missing-file"), SETTINGS, root_name="build-7", root_uid="u")
    assert built["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "mkdir",
        "-p",
        "--",
        "/mnt/target/dist",
    ]


def test_missing_file_creates_parent_of_a_missing_file() -> None:
    d = plan(
        failure(
            "missing-file",
            evidence_text="ENOENT: no such file or directory, open '/workspace/out/a.txt'",
        )
    )
    assert d.shaped.parameters["path"] == "out"


@pytest.mark.parametrize(
    "evidence",
    [
        "ENOENT: no such file or directory, scandir '/etc/x'",
        "ENOENT: no such file or directory, scandir '/workspace/../etc'",
        "ENOENT: no such file or directory, scandir '/workspace/a;rm -rf ~'",
        "ENOENT: no such file or directory, scandir '/workspace/$(reboot)'",
        "ENOENT: no such file or directory, scandir '/workspace/\uff0e\uff0e/etc'",
        "ENOENT: no such file or directory",
    ],
)
def test_missing_file_outside_mount_is_refused_to_manual(evidence: str) -> None:
    d = plan(failure("missing-file", evidence_text=evidence, solution="create it"))
    assert d.kind == "manual" and d.shaped.action == catalog.NONE
    assert "create-directory" in d.message


def test_hostile_path_is_refused_not_truncated() -> None:
    f = failure("missing-file", evidence_text="open '/workspace/a;rm -rf /'")
    assert candidate_paths(f) == ["/workspace/a;rm -rf /"]


def test_capture_path_is_preferred() -> None:
    f = failure("missing-file", evidence_path="/workspace/x/", evidence_text="'/workspace/y'")
    assert candidate_paths(f)[0] == "/workspace/x/"


def test_no_job_means_no_action() -> None:
    d = plan(failure("network", job=None))
    assert d.kind == "manual" and "no Job" in d.message


# --- LLM suggestions and what worked before -------------------------------------------------


@pytest.mark.parametrize(
    "suggestion",
    ["rm -rf /", "docker system prune -af --volumes", catalog.CLEAR_CACHE, catalog.RETRY, "none"],
)
def test_llm_suggestion_outside_policy_is_ignored(suggestion: str) -> None:
    d = plan(failure("out-of-memory", suggestion=suggestion))
    assert d.shaped.action == catalog.MORE_MEMORY
    if suggestion != "none":
        assert any("ignored" in n and "suggested by the AI" in n for n in d.notes)
        assert not any("rm -rf" in n or "prune" in n for n in d.notes)


def test_llm_suggestion_inside_policy_ranks_first() -> None:
    f = failure(
        "disk-full",
        suggestion=catalog.CLEAR_CACHE,
        evidence_text="ENOSPC: no space left on device, write '/workspace/.npm/_cacache/t'",
    )
    f.job["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "limits": {"ephemeral-storage": "1Gi"}
    }
    assert plan(f).shaped.action == catalog.CLEAR_CACHE
    assert (
        plan(
            failure("disk-full", suggestion=None, job=f.job, evidence_text=f.evidence_text)
        ).shaped.action
        == catalog.MORE_STORAGE
    )


def test_what_worked_before_ranks_first() -> None:
    f = failure("deadline-exceeded", preferred=catalog.RETRY)
    assert choose(f, SETTINGS, 0)[0].action == catalog.RETRY
    assert choose(failure("deadline-exceeded"), SETTINGS, 0)[0].action == catalog.LONGER_DEADLINE


# --- modes and approval ---------------------------------------------------------------------


def test_off_plans_but_never_runs() -> None:
    d = plan(failure("out-of-memory"), {"remediation": {"mode": "Off"}})
    assert d.kind == "off" and d.shaped.action == catalog.MORE_MEMORY


def test_manual_waits_for_approval_then_runs() -> None:
    d = plan(failure("out-of-memory"), {"remediation": {"mode": "Manual"}})
    assert d.kind == "await-approval" and d.shaped.parameters["newLimit"] == "768Mi"
    d = plan(failure("out-of-memory"), {"remediation": {"mode": "Manual", "approved": True}})
    assert d.kind == "run"
    assert (
        plan(failure("out-of-memory"), {"remediation": {"mode": "Manual", "approved": "true"}}).kind
        == "await-approval"
    )


def test_mode_defaults_per_namespace() -> None:
    s = Settings(remediation_mode="Auto", remediation_mode_by_namespace={"ci": "Manual"})
    assert plan(failure("out-of-memory"), {}, settings=s).kind == "await-approval"
    assert plan(failure("out-of-memory", namespace="dev"), {}, settings=s).kind == "run"


# --- attempts, loop guard, backoff ----------------------------------------------------------


def test_max_attempts_stops() -> None:
    spec = {"remediation": {"mode": "Auto", "maxAttempts": 2}}
    assert plan(failure("out-of-memory"), spec, attempts=1).kind == "run"
    d = plan(failure("out-of-memory"), spec, attempts=2)
    assert d.kind == "exhausted" and "2 of at most 2" in d.message
    assert plan(failure("out-of-memory"), {"remediation": {"maxAttempts": 0}}).kind == "manual"


def test_max_attempts_is_bounded() -> None:
    assert effective_max_attempts(10_000, SETTINGS) == 10
    assert effective_max_attempts(-3, SETTINGS) == 0
    assert effective_max_attempts(True, SETTINGS) == SETTINGS.remediation_max_attempts


def test_sometimes_transient_categories_retry_once() -> None:
    assert plan(failure("image-pull"), attempts=0, now=1e6).kind == "run"
    assert plan(failure("image-pull"), attempts=1, now=1e6).kind == "manual"


def test_exponential_backoff_for_transient_retries() -> None:
    assert [backoff_seconds("network", catalog.RETRY, n, 10) for n in (1, 2, 3)] == [10, 20, 40]
    assert backoff_seconds("out-of-memory", catalog.MORE_MEMORY, 1, 10) == 0
    assert backoff_seconds("network", catalog.RETRY, 30, 10) == 3600
    d = plan(failure("network"), attempts=1, failed_at=1000.0, now=1005.0)
    assert d.kind == "wait" and d.wait_seconds == pytest.approx(15.0) and d.attempt == 2
    assert plan(failure("network"), attempts=1, failed_at=1000.0, now=1020.0).kind == "run"


# --- cooldown and rate limit ----------------------------------------------------------------


def test_cooldown_per_target_and_fingerprint() -> None:
    ledger = StartLedger()
    ledger.record(Start(900.0, "ci", "prec-other", "build-7", "fp-x"))
    d = plan(failure("out-of-memory"), ledger=ledger)
    assert d.kind == "wait" and d.wait_seconds == pytest.approx(200.0)
    assert "target build-7" in d.message
    ledger = StartLedger(starts=[Start(900.0, "ci", "prec-other", "deploy", "fp-out-of-memory")])
    d = plan(failure("out-of-memory"), ledger=ledger)
    assert d.kind == "wait" and "same failure" in d.message
    # The incident's own earlier attempts and other namespaces do not count.
    ledger = StartLedger(
        starts=[
            Start(900.0, "ci", "prec-build-7", "build-7", "fp-out-of-memory"),
            Start(900.0, "dev", "prec-z", "build-7", "fp-out-of-memory"),
        ]
    )
    assert plan(failure("out-of-memory"), ledger=ledger).kind == "run"
    assert (
        plan(
            failure("out-of-memory"),
            ledger=StartLedger([Start(600.0, "ci", "prec-other", "build-7", "fp")]),
        ).kind
        == "run"
    )  # expired


def test_namespace_rate_limit() -> None:
    ledger = StartLedger(
        starts=[Start(950.0 + i, "ci", f"p{i}", f"t{i}", f"f{i}") for i in range(3)]
    )
    d = plan(failure("out-of-memory"), ledger=ledger)
    assert d.kind == "wait" and d.wait_seconds == pytest.approx(10.0)
    assert "3 remediation Jobs per minute" in d.message
    assert plan(failure("out-of-memory"), ledger=ledger, now=1011.0).kind == "run"
    assert plan(failure("out-of-memory", namespace="dev"), ledger=ledger).kind == "run"


def test_storm_never_exceeds_rate() -> None:
    ledger, started = StartLedger(), 0
    for i in range(100):
        f = failure("network", recovery=f"prec-{i}", fingerprint=f"fp-{i}")
        d = plan_remediation(
            f,
            settings=SETTINGS,
            spec={},
            attempts_done=0,
            failed_at=0,
            now=100.0,
            ledger=ledger,
            target=f"job-{i}",
        )
        if d.kind == "run":
            ledger.record(Start(100.0, "ci", f.recovery, f"job-{i}", f.fingerprint))
            started += 1
    assert started == SETTINGS.remediation_namespace_jobs_per_minute


def test_ledger_forget_and_prune() -> None:
    ledger = StartLedger(horizon_seconds=100)
    ledger.record(Start(1.0, "ci", "a", "t", "f"))
    ledger.record(Start(500.0, "ci", "b", "t", "f"))
    assert ledger.known("a", 1.0)
    ledger.prune(550.0)
    assert not ledger.known("a", 1.0) and ledger.known("b", 500.0)
    ledger.forget("b", 500.0)
    assert ledger.starts == []


# --- every Job any action builds validates --------------------------------------------------


@pytest.mark.parametrize(
    ("category", "evidence"),
    [
        ("out-of-memory", ""),
        ("network", ""),
        ("deadline-exceeded", ""),
        ("missing-file", "scandir '/workspace/dist'"),
        ("dependency-resolution", "EINTEGRITY"),
    ],
)
def test_built_jobs_validate_against_batch_v1(category: str, evidence: str) -> None:
    f = failure(category, evidence_text=evidence)
    d = plan(f, now=1e6)
    assert d.kind == "run"
    original = copy.deepcopy(f.job)
    for built in (
        first_job(d, f, SETTINGS, root_name="build-7", root_uid="job-uid"),
        retry_job(d, f, root_name="build-7", root_uid="job-uid"),
    ):
        kubernetes_validate.validate(built, "1.30.0", strict=True)
        assert built["metadata"]["namespace"] == "ci"
    assert f.job == original
