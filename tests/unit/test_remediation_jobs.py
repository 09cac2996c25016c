"""Job shapes remediation builds: retries (cleaned copies, raised resources) and fixed-argv Jobs."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

from pipeline_recovery.remediation import catalog
from pipeline_recovery.remediation.claim_jobs import build_claim_job
from pipeline_recovery.remediation.naming import (
    LABEL_ATTEMPT,
    LABEL_ORIGINAL_JOB,
    LABEL_RECOVERY,
    is_dns_label,
    lineage,
    remediation_job_name,
    retry_job_name,
)
from pipeline_recovery.remediation.paths import ClaimPath
from pipeline_recovery.remediation.quantities import (
    QuantityError,
    format_bytes,
    parse_quantity,
    scale_bytes,
)
from pipeline_recovery.remediation.resources import (
    PlanError,
    plan_deadline_raise,
    plan_resource_raise,
)
from pipeline_recovery.remediation.retry_jobs import build_retry_job

K8S = "1.30.0"


def validate(job: dict[str, Any]) -> None:
    kubernetes_validate.validate(job, K8S, strict=True)


def failed_job(memory: str | None = "512Mi", name: str = "build-42") -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if memory:
        resources = {"requests": {"memory": memory, "cpu": "100m"}, "limits": {"memory": memory}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": "ci",
            "uid": "11111111-2222-3333-4444-555555555555",
            "resourceVersion": "42",
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "generation": 1,
            "managedFields": [{"manager": "kubectl"}],
            "labels": {"app": "web", "controller-uid": "abc", "job-name": name},
            "annotations": {
                "team": "web",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "batch.kubernetes.io/job-tracking": "",
            },
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": "nightly",
                    "uid": "u-1",
                    "controller": True,
                },
            ],
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": 600,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}},
            "template": {
                "metadata": {
                    "labels": {
                        "app": "web",
                        "controller-uid": "abc",
                        "job-name": name,
                        "batch.kubernetes.io/controller-uid": "abc",
                        "batch.kubernetes.io/job-name": name,
                    },
                    "creationTimestamp": None,
                },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "build",
                            "image": "node:20",
                            "command": ["npm", "test"],
                            "resources": resources,
                        },
                    ],
                },
            },
        },
        "status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]},
    }


# --- quantities ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("512Mi", 512 * 2**20),
        ("1Gi", 2**30),
        ("1.5Gi", 3 * 2**29),
        ("100M", 10**8),
        ("1e3", 1000),
        ("250m", 0.25),
        ("0", 0),
        ("12", 12),
        (".5Ki", 512),
    ],
)
def test_parse_quantity_exact(text: str, value: float) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("bad", ["", "Mi", "12 Mi", "12MB", "-", "1.2.3Gi", "12Mi;", True, None])
def test_parse_quantity_refuses(bad: object) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(bad)


@pytest.mark.parametrize(
    ("old", "factor", "cap", "new", "capped"),
    [
        ("512Mi", 1.5, "8Gi", "768Mi", False),
        ("1Gi", 1.5, "8Gi", "1536Mi", False),
        ("6Gi", 1.5, "8Gi", "8Gi", True),
        ("100M", 1.5, "8Gi", "150M", False),
        ("1G", 1.5, "8Gi", "1500M", False),
        ("333Mi", 1.5, "8Gi", "511488Ki", False),
        ("1001", 1.5, "8Gi", "1502", False),
    ],
)
def test_scale_bytes(old: str, factor: float, cap: str, new: str, capped: bool) -> None:
    assert scale_bytes(old, factor, cap) == (new, capped)


def test_format_bytes_rounds_up_to_whole_bytes() -> None:
    assert format_bytes(parse_quantity("1.5")) == "2"


# --- names ----------------------------------------------------------------------------------


def test_retry_names_deterministic_and_bounded() -> None:
    assert retry_job_name("build-42", 1) == "build-42-retry-1"
    long = "a" * 63
    first, again = retry_job_name(long, 3), retry_job_name(long, 3)
    assert (
        first == again and len(first) <= 63 and first.endswith("-retry-3") and is_dns_label(first)
    )
    assert retry_job_name("a" * 62 + "b", 3) != first  # distinct originals stay distinct
    assert remediation_job_name("prec-x", catalog.CREATE_DIRECTORY, 2) == "prec-x-mkdir-2"


# --- retry ----------------------------------------------------------------------------------


def test_retry_job_drops_controller_fields_and_labels_lineage() -> None:
    original = failed_job()
    before = copy.deepcopy(original)
    job = build_retry_job(
        original,
        root_name="build-42",
        root_uid="uid-root",
        recovery="prec-1",
        attempt=1,
        action=catalog.RETRY,
    )
    assert original == before  # the input is never mutated
    meta, spec = job["metadata"], job["spec"]
    assert meta["name"] == "build-42-retry-1"
    for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"):
        assert key not in meta
    assert "ownerReferences" not in meta  # the CronJob controller must not adopt our copy
    assert "selector" not in spec and "status" not in job
    assert meta["labels"] == {
        "app": "web",
        "app.kubernetes.io/managed-by": "pipeline-recovery",
        LABEL_RECOVERY: "prec-1",
        LABEL_ORIGINAL_JOB: "build-42",
        LABEL_ATTEMPT: "1",
        "pipelinerecovery.dev/action": "retry",
        "pipelinerecovery.dev/role": "retry",
    }
    tlabels = spec["template"]["metadata"]["labels"]
    assert not {
        "controller-uid",
        "job-name",
        "batch.kubernetes.io/controller-uid",
        "batch.kubernetes.io/job-name",
    } & set(tlabels)
    assert tlabels[LABEL_RECOVERY] == "prec-1"
    assert meta["annotations"] == {"team": "web", "pipelinerecovery.dev/original-uid": "uid-root"}
    assert spec["template"]["spec"]["containers"][0]["command"] == ["npm", "test"]
    validate(job)


def test_retry_of_a_retry_counts_against_the_original() -> None:
    first = build_retry_job(
        failed_job(),
        root_name="build-42",
        root_uid="uid-root",
        recovery="prec-1",
        attempt=1,
        action=catalog.RETRY,
    )
    assert lineage(first) == ("build-42", "uid-root", 1)
    assert lineage(failed_job()) == ("build-42", "11111111-2222-3333-4444-555555555555", 0)
    forged = copy.deepcopy(first)
    forged["metadata"]["labels"][LABEL_ATTEMPT] = "not-a-number"
    assert lineage(forged)[2] == 0


def test_more_memory_512_to_768_with_old_and_new_recorded() -> None:
    original = failed_job("512Mi")
    pod_spec = original["spec"]["template"]["spec"]
    change = plan_resource_raise(pod_spec, "build", "memory", 1.5, "8Gi")
    assert change.as_parameters() == {
        "container": "build",
        "resource": "memory",
        "oldRequest": "512Mi",
        "newRequest": "768Mi",
        "oldLimit": "512Mi",
        "newLimit": "768Mi",
    }
    job = build_retry_job(
        original,
        root_name="build-42",
        root_uid="u",
        recovery="prec-1",
        attempt=1,
        action=catalog.MORE_MEMORY,
        resource_change=change,
    )
    res = job["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert res == {"requests": {"memory": "768Mi", "cpu": "100m"}, "limits": {"memory": "768Mi"}}
    assert "oldLimit=512Mi" in job["metadata"]["annotations"]["pipelinerecovery.dev/changes"]
    validate(job)


def test_more_memory_capped_then_refused_at_cap() -> None:
    pod_spec = failed_job("6Gi")["spec"]["template"]["spec"]
    change = plan_resource_raise(pod_spec, None, "memory", 1.5, "8Gi")
    assert (change.new_limit, change.capped) == ("8Gi", True)
    at_cap = failed_job("8Gi")["spec"]["template"]["spec"]
    with pytest.raises(PlanError, match="already at the cap"):
        plan_resource_raise(at_cap, "build", "memory", 1.5, "8Gi")


def test_more_memory_needs_a_known_container_and_a_value() -> None:
    with pytest.raises(PlanError, match="sets no memory"):
        plan_resource_raise(
            failed_job(None)["spec"]["template"]["spec"], "build", "memory", 1.5, "8Gi"
        )
    with pytest.raises(PlanError, match="not in the Job"):
        plan_resource_raise(failed_job()["spec"]["template"]["spec"], "other", "memory", 1.5, "8Gi")
    two = failed_job()["spec"]["template"]["spec"]
    two["containers"].append({"name": "side", "image": "x"})
    with pytest.raises(PlanError, match="which container"):
        plan_resource_raise(two, None, "memory", 1.5, "8Gi")


def test_more_storage_raises_ephemeral_storage() -> None:
    original = failed_job(None)
    container = original["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"limits": {"ephemeral-storage": "2Gi"}}
    change = plan_resource_raise(
        original["spec"]["template"]["spec"], "build", "ephemeral-storage", 2.0, "20Gi"
    )
    job = build_retry_job(
        original,
        root_name="build-42",
        root_uid="u",
        recovery="p",
        attempt=1,
        action=catalog.MORE_STORAGE,
        resource_change=change,
    )
    res = job["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert res == {"limits": {"ephemeral-storage": "4Gi"}}
    validate(job)


def test_longer_deadline_doubles_and_caps() -> None:
    original = failed_job()
    change = plan_deadline_raise(original, 2.0, 900)
    assert change == {"field": "job", "oldSeconds": "600", "newSeconds": "900"}
    job = build_retry_job(
        original,
        root_name="build-42",
        root_uid="u",
        recovery="p",
        attempt=1,
        action=catalog.LONGER_DEADLINE,
        deadline_change=change,
    )
    assert job["spec"]["activeDeadlineSeconds"] == 900
    validate(job)
    original["spec"]["activeDeadlineSeconds"] = 900
    with pytest.raises(PlanError, match="cap"):
        plan_deadline_raise(original, 2.0, 900)
    del original["spec"]["activeDeadlineSeconds"]
    with pytest.raises(PlanError, match="no activeDeadlineSeconds"):
        plan_deadline_raise(original, 2.0, 900)


# --- our own Jobs ---------------------------------------------------------------------------

RESTRICTED_CONTAINER = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.mark.parametrize(
    ("action", "argv"),
    [
        (catalog.CREATE_DIRECTORY, ["mkdir", "-p", "--", "/mnt/target/build/out"]),
        (
            catalog.CLEAR_CACHE,
            ["find", "/mnt/target/build/out", "-xdev", "-mindepth", "1", "-delete"],
        ),
    ],
)
def test_claim_job_shape(action: str, argv: list[str]) -> None:
    where = ClaimPath("workspace", "/workspace", "build/out")
    job = build_claim_job(
        action,
        where,
        namespace="ci",
        recovery="prec-1",
        recovery_uid="uid-p",
        attempt=1,
        image="busybox:1.36.1",
        deadline_seconds=120,
        pod_spec={"securityContext": {"runAsUser": 1000, "runAsGroup": 3000}},
    )
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == argv and "args" not in container
    assert {
        k: container["securityContext"][k] for k in RESTRICTED_CONTAINER
    } == RESTRICTED_CONTAINER
    assert (
        container["securityContext"]["runAsUser"],
        container["securityContext"]["runAsGroup"],
    ) == (1000, 3000)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert spec["activeDeadlineSeconds"] == 120 and spec["ttlSecondsAfterFinished"] > 0
    assert spec["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
    assert pod["volumes"] == [
        {"name": "target", "persistentVolumeClaim": {"claimName": "workspace"}}
    ]
    assert container["volumeMounts"] == [{"name": "target", "mountPath": "/mnt/target"}]
    (owner,) = job["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "pipelinerecovery.dev/v1alpha1",
        "kind": "PipelineRecovery",
        "name": "prec-1",
        "uid": "uid-p",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert container["image"] == "busybox:1.36.1"
    validate(job)


def test_claim_job_never_runs_as_root() -> None:
    where = ClaimPath("ws", "/ws", "a")
    job = build_claim_job(
        catalog.CREATE_DIRECTORY,
        where,
        namespace="ci",
        recovery="p",
        recovery_uid="u",
        attempt=1,
        image="busybox",
        deadline_seconds=60,
        pod_spec={"securityContext": {"runAsUser": 0}},
    )
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 65532


def test_claim_job_refuses_claim_root_and_missing_owner() -> None:
    with pytest.raises(PlanError, match="root"):
        build_claim_job(
            catalog.CLEAR_CACHE,
            ClaimPath("ws", "/ws", ""),
            namespace="ci",
            recovery="p",
            recovery_uid="u",
            attempt=1,
            image="b",
            deadline_seconds=60,
            pod_spec={},
        )
    with pytest.raises(PlanError, match="uid"):
        build_claim_job(
            catalog.CREATE_DIRECTORY,
            ClaimPath("ws", "/ws", "a"),
            namespace="ci",
            recovery="p",
            recovery_uid="",
            attempt=1,
            image="b",
            deadline_seconds=60,
            pod_spec={},
        )
