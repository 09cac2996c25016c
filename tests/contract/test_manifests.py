"""Contract: the manifests are valid Kubernetes objects that fit together and stay locked down."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from pipeline_recovery.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.30"
# Kinds whose schema lives in a CRD, not in Kubernetes: PipelineRecovery objects are checked
# against our CRD by tests/contract/test_crd*, the monitoring kinds by test_alert*/dashboard*.
CUSTOM_KINDS = {
    "PipelineRecovery",
    "ClusterKopfPeering",
    "KopfPeering",
    "PrometheusRule",
    "ServiceMonitor",
    "PodMonitor",
}
SCANNED_DIRS = ["manifests", "crds", "overlays", "tests/e2e"]
SYSTEM_NS = "pipeline-recovery-system"

Doc = dict[str, Any]


def _yaml_files() -> list[Path]:
    files: list[Path] = []
    for top in SCANNED_DIRS:
        files += sorted((ROOT / top).rglob("*.yaml")) + sorted((ROOT / top).rglob("*.yml"))
    return files


def _docs(path: Path) -> list[Doc]:
    with path.open(encoding="utf-8") as handle:
        return [d for d in yaml.safe_load_all(handle) if d]


def kustomize(directory: Path) -> list[Doc]:
    """The objects a resources-only kustomization yields (what `kubectl apply -k` applies)."""
    kust = _docs(directory / "kustomization.yaml")[0]
    unsupported = set(kust) - {"apiVersion", "kind", "resources"}
    assert not unsupported, f"{directory}: base kustomizations use only `resources` ({unsupported})"
    out: list[Doc] = []
    for entry in kust.get("resources", []):
        target = (directory / entry).resolve()
        out += kustomize(target) if target.is_dir() else _docs(target)
    return out


def _files_of(directory: Path) -> set[Path]:
    kust = _docs(directory / "kustomization.yaml")[0]
    out: set[Path] = set()
    for entry in kust.get("resources", []):
        target = (directory / entry).resolve()
        out |= _files_of(target) if target.is_dir() else {target}
    return out


BASE = kustomize(ROOT / "manifests")


def _one(kind: str, name: str | None = None) -> Doc:
    found = [
        d for d in BASE if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''} in manifests/, found {len(found)}"
    return found[0]


DEPLOYMENT = _one("Deployment", "pipeline-recovery")
POD = DEPLOYMENT["spec"]["template"]
CONTAINER = POD["spec"]["containers"][0]


def _walk_env() -> Iterator[Doc]:
    yield from CONTAINER.get("env", [])


# ---- schema validity --------------------------------------------------------------------------


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_object_validates_against_kubernetes_schema(path: Path) -> None:
    docs = _docs(path)
    assert docs, f"{path} holds no YAML document"
    for doc in docs:
        kind = doc.get("kind")
        if path.name == "kustomization.yaml":
            assert kind in {"Kustomization", "Component"}
            continue
        if kind is None:
            # A plain Prometheus rules file (the one source the PrometheusRule is built from).
            assert "groups" in doc and "prometheus" in path.parts, f"{path}: no kind"
            continue
        if kind in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_kustomizations_apply_every_manifest_file() -> None:
    applied = _files_of(ROOT / "manifests")
    for path in (ROOT / "manifests").rglob("*.yaml"):
        rel = path.relative_to(ROOT / "manifests")
        # samples/ are examples for people, prometheus/ and grafana/ an opt-in overlay.
        if path.name == "kustomization.yaml" or rel.parts[0] in {
            "samples",
            "prometheus",
            "grafana",
        }:
            continue
        assert path.resolve() in applied, (
            f"manifests/{rel} is not reachable from kustomization.yaml"
        )
    crd_files = _files_of(ROOT / "crds")
    for path in (ROOT / "crds").glob("*.yaml"):
        if path.name != "kustomization.yaml":
            assert path.resolve() in crd_files, (
                f"crds/{path.name} missing from crds/kustomization.yaml"
            )


def _key(doc: Doc) -> tuple[str, str, str]:
    return doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
@pytest.mark.parametrize("directory", ["manifests", "crds", "overlays/kind", "overlays/monitoring"])
def test_kubectl_kustomize_renders(directory: str) -> None:
    if not (ROOT / directory / "kustomization.yaml").exists():
        pytest.skip(f"{directory} has no kustomization yet")
    done = subprocess.run(
        ["kubectl", "kustomize", directory],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rendered = [d for d in yaml.safe_load_all(done.stdout) if d]
    if directory in {"manifests", "crds"}:
        assert sorted(map(_key, rendered)) == sorted(map(_key, kustomize(ROOT / directory)))
    if directory == "overlays/kind":
        dep = next(d for d in rendered if d["kind"] == "Deployment")
        container = dep["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "pipeline-recovery:dev"  # the Makefile's default IMG
        assert container["imagePullPolicy"] == "IfNotPresent"  # kind-loaded, never pulled


# ---- the Deployment ---------------------------------------------------------------------------


def test_deployment_runs_restricted() -> None:
    pod_sc = POD["spec"]["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] == 65532
    assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault"
    sc = CONTAINER["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert not POD["spec"].get("hostNetwork") and not POD["spec"].get("hostPID")
    for key in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(CONTAINER["resources"][key])
    mounts = {m["mountPath"]: m["name"] for m in CONTAINER["volumeMounts"]}
    volumes = {v["name"]: v for v in POD["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    # The API token is mounted explicitly (projected, bounded lifetime) instead of automounted.
    assert POD["spec"]["automountServiceAccountToken"] is False
    token = volumes[mounts["/var/run/secrets/kubernetes.io/serviceaccount"]]["projected"]
    assert any("serviceAccountToken" in s for s in token["sources"])


def test_namespace_enforces_restricted_pod_security() -> None:
    ns = _one("Namespace", SYSTEM_NS)
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    namespaced = [
        d
        for d in BASE
        if d["kind"]
        in {"Deployment", "Service", "ServiceAccount", "NetworkPolicy", "PodDisruptionBudget"}
    ]
    assert namespaced and all(d["metadata"]["namespace"] == SYSTEM_NS for d in namespaced)


def _liveness_port() -> int:
    args = " ".join(CONTAINER.get("args", []))
    match = re.search(r"--liveness[= ]https?://[^:/]+:(\d+)(/\S*)", args)
    assert match, f"the operator is started without kopf's --liveness endpoint: {args}"
    return int(match.group(1))


def test_probes_hit_kopf_liveness_endpoint() -> None:
    ports = {p["name"]: p["containerPort"] for p in CONTAINER["ports"]}
    args = " ".join(CONTAINER["args"])
    path = re.search(r"--liveness[= ]\S+?:\d+(/\S*)", args)
    assert path
    for probe in ("livenessProbe", "readinessProbe"):
        http = CONTAINER[probe]["httpGet"]
        port = ports[http["port"]] if isinstance(http["port"], str) else http["port"]
        assert port == _liveness_port() and http["path"] == path.group(1)


def test_metrics_port_matches_setting_and_service() -> None:
    env = {e["name"]: e.get("value") for e in _walk_env()}
    port = int(env.get("PIPELINE_RECOVERY_METRICS_PORT") or Settings().metrics_port)
    ports = {p["name"]: p["containerPort"] for p in CONTAINER["ports"]}
    assert ports["metrics"] == port
    service = _one("Service")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["metrics"]
    assert service["spec"]["selector"].items() <= POD["metadata"]["labels"].items()


def test_deployment_env_is_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    env_names = {"PIPELINE_RECOVERY_" + name.upper() for name in Settings.model_fields}
    for item in _walk_env():
        if item["name"] == "POD_ID":  # kopf's own: the replica's identity in the peering object
            assert item["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
            continue
        assert item["name"] in env_names, f"{item['name']} is not a setting"
        if "value" in item:
            monkeypatch.setenv(item["name"], item["value"])
    settings = load_settings()
    assert settings.peering_name == _one("ClusterKopfPeering")["metadata"]["name"]


def test_llm_key_comes_from_optional_secret_matching_example() -> None:
    refs = [
        e["valueFrom"]["secretKeyRef"]
        for e in _walk_env()
        if "secretKeyRef" in e.get("valueFrom", {})
    ]
    assert [e["name"] for e in _walk_env() if "secretKeyRef" in e.get("valueFrom", {})] == [
        "PIPELINE_RECOVERY_LLM_API_KEY"
    ]
    assert refs[0]["optional"] is True
    example = _docs(ROOT / "manifests/samples/llm-secret.example.yaml")[0]
    assert example["kind"] == "Secret" and example["metadata"]["name"] == refs[0]["name"]
    assert example["metadata"]["namespace"] == SYSTEM_NS
    assert list(example["stringData"]) == [refs[0]["key"]]
    assert example["stringData"][refs[0]["key"]] == "REPLACE-ME"  # never a real key


def test_high_availability_shape() -> None:
    assert DEPLOYMENT["spec"]["replicas"] >= 2
    assert "--standalone" not in CONTAINER["args"]
    labels = POD["metadata"]["labels"]
    pdb = _one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] == 1
    anti = POD["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert anti[0]["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items()
    spread = POD["spec"]["topologySpreadConstraints"][0]
    assert spread["labelSelector"]["matchLabels"].items() <= labels.items()


# ---- peering ----------------------------------------------------------------------------------


def test_peering_objects_match_kopf_and_settings() -> None:
    from kopf._cogs.structs import references

    peering = _one("ClusterKopfPeering")
    group = peering["apiVersion"].split("/")[0]
    assert references.CLUSTER_PEERINGS_K.group == group  # the group kopf looks for first
    crds = {d["metadata"]["name"] for d in kustomize(ROOT / "crds")}
    assert {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"} <= crds
    name = peering["metadata"]["name"]
    assert name == Settings().peering_name
    role = _one("ClusterRole", "pipeline-recovery-peering")
    named = [r for r in role["rules"] if "patch" in r["verbs"]]
    assert named and all(r["resourceNames"] == [name] for r in named)


# ---- RBAC -------------------------------------------------------------------------------------


def test_bindings_point_at_existing_roles_and_service_account() -> None:
    sa = _one("ServiceAccount")
    assert POD["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    roles = {d["metadata"]["name"] for d in BASE if d["kind"] == "ClusterRole"}
    bindings = [d for d in BASE if d["kind"] in {"ClusterRoleBinding", "RoleBinding"}]
    assert {b["roleRef"]["name"] for b in bindings} == {
        "pipeline-recovery",
        "pipeline-recovery-peering",
    }
    for binding in bindings:
        assert binding["roleRef"]["name"] in roles
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": SYSTEM_NS}
        ]


def test_no_role_grants_wildcards_secrets_or_escalation() -> None:
    roles = [d for d in BASE if d["kind"] in {"ClusterRole", "Role"}]
    assert roles
    for role in roles:
        for rule in role.get("rules", []):
            where = f"{role['metadata']['name']}: {rule}"
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(key, []), f"wildcard in {where}"
            assert "secrets" not in rule["resources"], where
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), where
            assert not {"pods/exec", "pods/attach", "pods/portforward", "nodes/proxy"} & set(
                rule["resources"]
            ), where


def test_user_roles_aggregate_and_leave_status_to_the_operator() -> None:
    viewer = _one("ClusterRole", "pipeline-recovery-viewer")
    editor = _one("ClusterRole", "pipeline-recovery-editor")
    assert viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert editor["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    for rule in viewer["rules"]:
        assert set(rule["verbs"]) <= {"get", "list", "watch"}
    for rule in editor["rules"]:
        if "pipelinerecoveries/status" in rule["resources"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}
    assert any(
        "create" in r["verbs"] and "pipelinerecoveries" in r["resources"] for r in editor["rules"]
    )


# ---- network policy ---------------------------------------------------------------------------


def test_network_policy_allows_only_metrics_in_and_dns_api_llm_out() -> None:
    policy = _one("NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= POD["metadata"]["labels"].items()
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ingress_ports = {
        (p["protocol"], p["port"]) for r in policy["spec"]["ingress"] for p in r["ports"]
    }
    assert ingress_ports == {("TCP", 8080)}
    egress_ports = {
        (p["protocol"], p["port"]) for r in policy["spec"]["egress"] for p in r["ports"]
    }
    assert egress_ports == {("UDP", 53), ("TCP", 53), ("TCP", 443), ("TCP", 6443)}


# ---- e2e sample Jobs --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["npm-enoent-job.yaml", "oom-job.yaml"])
def test_e2e_jobs_are_restricted_and_use_the_loaded_image(name: str) -> None:
    job = _docs(ROOT / "tests/e2e" / name)[0]
    assert job["kind"] == "Job" and job["metadata"]["namespace"] == "pipeline-recovery-e2e"
    spec = job["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert (
        container["image"] == "pipeline-recovery:dev"
        and container["imagePullPolicy"] == "IfNotPresent"
    )
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert job["spec"]["backoffLimit"] == 0  # one failure is one incident


# ---- container image --------------------------------------------------------------------------

DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_multistage_pinned_and_non_root() -> None:
    steps = _instructions()
    froms = [rest for word, rest in steps if word == "FROM"]
    assert len(froms) >= 2, "multi-stage: a builder and a final stage"
    for image in froms:
        assert re.match(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", image), image
    final = steps[max(i for i, (w, _) in enumerate(steps) if w == "FROM") :]
    assert ("USER", "65532:65532") in final
    assert ("ENTRYPOINT", '["pipeline-recovery", "run"]') in final
    assert any(word == "HEALTHCHECK" for word, _ in final)
    final_runs = " ".join(rest for word, rest in final if word == "RUN")
    for tool in ("apt-get install", "gcc", "build-essential", "pip install"):
        assert tool not in final_runs, f"build tool in the final image: {tool}"
    assert any(
        word == "COPY" and rest.startswith("--from=builder /opt/venv") for word, rest in final
    )


def test_dockerignore_keeps_the_context_to_the_package() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert lines[0] == "*" or "*" in lines
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "setup.py", "README.md", "operator"}
