"""`pipeline-recovery demo`: the whole flow on an in-process emulated cluster, no cluster needed."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from pipeline_recovery.labels import API_VERSION, INCIDENT_LABEL, PLURAL
from pipeline_recovery.status import DIAGNOSED_PHASES

NS = "ci"
CRD = Path(__file__).resolve().parents[2] / "crds" / "pipelinerecoveries.yaml"
DONE = DIAGNOSED_PHASES | {"Error"}
# The demo runs in Auto mode: Diagnosed is a passing state until remediation has decided.
SETTLED = DONE - {"Remediating", "Diagnosed"}

# The seed's npm build failure, verbatim.
NPM_ENOENT = """\
npm ERR! code ENOENT
npm ERR! syscall mkdir
npm ERR! path /app/node_modules/.cache
npm ERR! errno -2
npm ERR! enoent ENOENT: no such file or directory, mkdir '/app/node_modules/.cache'
npm ERR! enoent This is related to npm not being able to find a file.
"""
NPM_CLAIM = "npm-cache"
NETWORK = """\
Collecting requests==2.32.3
  Retrying (Retry(total=4)) after connection broken by 'ConnectTimeoutError(
  <pip._vendor.urllib3.connection.HTTPSConnection object>, 'Connection to pypi.org timed out.
  (connect timeout=15)')': /simple/requests/
ERROR: Could not install packages due to an OSError: HTTPSConnectionPool(host='pypi.org',
port=443): Max retries exceeded (Caused by ConnectTimeoutError: Connection timed out)
"""
TESTS = """\
============================= test session starts ==============================
collected 214 items

tests/test_checkout.py ......F.....                                      [  5%]
FAILED tests/test_checkout.py::test_discount_rounding - AssertionError: 9.99 != 10.0
========================= 1 failed, 213 passed in 41.02s =========================
"""
GRADLE_OOM = """\
> Task :app:compileJava
> Task :app:test
Exception in thread "main" java.lang.OutOfMemoryError: Java heap space
"""
INLINE = """\
Run docker push registry.example.com/team/api:1.4.2
The push refers to repository [registry.example.com/team/api]
denied: requested access to the resource is denied
Error: Process completed with exit code 1.
"""


def _age(created: str | None) -> str:
    if not created:
        return "-"
    when = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    secs = int((datetime.datetime.now(datetime.UTC) - when).total_seconds())
    return f"{secs}s" if secs < 120 else f"{secs // 60}m"


def table(items: list[dict[str, Any]]) -> str:
    """Rows as `kubectl get pipelinerecoveries` prints them."""
    header = ("NAME", "TARGET", "CATEGORY", "SEVERITY", "PHASE", "ACTION", "AGE")
    rows = [header]
    for item in sorted(items, key=lambda i: i["metadata"]["name"]):
        spec, status = item.get("spec") or {}, item.get("status") or {}
        target = spec.get("target")
        rows.append((
            item["metadata"]["name"],
            f"{target['kind']}/{target['name']}" if target else "(inline log)",
            status.get("category", "-"), status.get("severity", "-"), status.get("phase", "-"),
            (status.get("remediation") or {}).get("action", "-"),
            _age(item["metadata"].get("creationTimestamp")),
        ))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    return "\n".join("   ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


async def _wait(cluster: Any, count: int, phases: frozenset[str], deadline: float
                ) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        items = (await cluster.get(f"/apis/{API_VERSION}/namespaces/{NS}/{PLURAL}"))["items"]
        if len(items) >= count and all(
                (i.get("status") or {}).get("phase") in phases for i in items):
            break
        await asyncio.sleep(0.1)
    return items


def _npm_build_job(runs: Any) -> dict[str, Any]:
    """The npm build with node_modules on a PersistentVolumeClaim: what lets create-directory
    act (a path outside any claim would only get a diagnosis)."""
    from pipeline_recovery.workloads import job_body

    job = job_body(NS, "frontend-build", runs)
    pod_spec = job["spec"]["template"]["spec"]
    pod_spec["securityContext"] = {"runAsUser": 1000, "runAsGroup": 1000}  # node image's user
    build = pod_spec["containers"][0]
    build.update(command=["npm", "run", "build"], workingDir="/app",
                 volumeMounts=[{"name": "node-modules", "mountPath": "/app/node_modules"}])
    pod_spec["volumes"] = [{"name": "node-modules",
                            "persistentVolumeClaim": {"claimName": NPM_CLAIM}}]
    return job


async def _finish_remediation_jobs(cluster: Any, seen: set[str]) -> None:
    """Stand in for the cluster: the Jobs the operator started for a recovery run and pass."""
    jobs = (await cluster.get(f"/apis/batch/v1/namespaces/{NS}/jobs"))["items"]
    for job in jobs:
        name = job["metadata"]["name"]
        if INCIDENT_LABEL in (job["metadata"].get("labels") or {}) and name not in seen:
            seen.add(name)
            await cluster.finish_job(NS, name, succeeded=True)


async def _print_own_jobs(cluster: Any, recovery: dict[str, Any]) -> None:
    """The argv of the Jobs remediation authored itself (mkdir, clear-cache): no shell, no log
    text, a path validated to stay inside the claim."""
    history = ((recovery.get("status") or {}).get("remediation") or {}).get("history") or ()
    for name in (h["jobName"] for h in history if h.get("jobName", "").startswith(
            recovery["metadata"]["name"] + "-")):
        job = await cluster.get(f"/apis/batch/v1/namespaces/{NS}/jobs/{name}")
        spec = job["spec"]["template"]["spec"]
        print(f"\n$ kubectl get job {name} -n ci -o jsonpath="
              "'{.spec.template.spec.containers[0].command}{.spec.template.spec.volumes}'")
        print(json.dumps(spec["containers"][0]["command"]), json.dumps(spec["volumes"]))


async def _demo(timeout: float) -> int:
    from pipeline_recovery.emulator import running_emulator, write_kubeconfig
    from pipeline_recovery.runner import EmbeddedOperator
    from pipeline_recovery.runtime import Runtime
    from pipeline_recovery.settings import load_settings
    from pipeline_recovery.workloads import ContainerRun, Workloads

    deadline = time.monotonic() + timeout
    async with running_emulator(CRD if CRD.exists() else None) as (emu, url), \
            Workloads(emu, url) as cluster:
        emu.namespaces.add(NS)
        with tempfile.TemporaryDirectory() as tmp:
            # The operator reaches the emulator the way it reaches a cluster: a kubeconfig.
            info = _from_kubeconfig(write_kubeconfig(Path(tmp) / "kubeconfig", url, NS))
        settings = load_settings(metrics_port=0, pod_grace_seconds=0, standalone=True,
                                 remediation_backoff_seconds=0, llm_api_key=None)
        rt = Runtime(settings, connection=info, fast=True)
        print(f"emulated Kubernetes API at {url}; operator watching namespace {NS!r}")
        async with EmbeddedOperator(rt, namespaces=[NS]):
            print("creating failing pipeline steps: npm build (ENOENT), pip install (network), "
                  "pytest (test failure), gradle (OOMKilled), deploy (image pull), "
                  "and an inline log from an external CI ...")
            await cluster.create(f"/api/v1/namespaces/{NS}/persistentvolumeclaims", {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": NPM_CLAIM, "namespace": NS},
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}},
            })
            npm = [ContainerRun(log=NPM_ENOENT, image="node:20")]
            npm_job = await cluster.create(f"/apis/batch/v1/namespaces/{NS}/jobs",
                                           _npm_build_job(npm))
            await cluster.finish_job(NS, "frontend-build", npm, succeeded=False, job=npm_job)
            await cluster.failed_job(NS, "api-deps", [ContainerRun(name="pip", log=NETWORK,
                                                                   image="python:3.12")])
            await cluster.failed_job(NS, "api-tests", [ContainerRun(name="pytest", log=TESTS,
                                                                    image="python:3.12")])
            await cluster.failed_job(NS, "android-build", [ContainerRun(
                name="gradle", log=GRADLE_OOM, exit_code=137, reason="OOMKilled",
                memory_limit="512Mi", image="gradle:8-jdk17")])
            await cluster.pod(NS, "deploy-staging", [ContainerRun(
                name="kubectl", exit_code=None, reason="ImagePullBackOff",
                image="registry.example.com/tools/kubectl:v9.9",
                message='Back-off pulling image "registry.example.com/tools/kubectl:v9.9"')])
            await cluster.create(f"/apis/{API_VERSION}/namespaces/{NS}/{PLURAL}", {
                "apiVersion": API_VERSION, "kind": "PipelineRecovery",
                "metadata": {"name": "github-actions-run-4711"},
                "spec": {"log": {"text": INLINE, "source": "github-actions", "container": "push"}},
            })
            items = await _wait(cluster, 6, frozenset(DONE), deadline)
            seen: set[str] = set()
            while time.monotonic() < deadline:
                await _finish_remediation_jobs(cluster, seen)
                items = await _wait(cluster, 6, frozenset(SETTLED),
                                    min(deadline, time.monotonic() + 0.5))
                if all((i.get("status") or {}).get("phase") in SETTLED for i in items):
                    break
        if len(items) < 6 or not all((i.get("status") or {}).get("phase") in DONE for i in items):
            print(table(items))
            print("demo: not every failure was diagnosed in time", file=sys.stderr)
            return 1
        print()
        print("$ kubectl get pipelinerecoveries -n ci")
        print(table(items))
        first = next(i for i in items if (i["spec"].get("target") or {}).get("name")
                     == "frontend-build")
        print(f"\n$ kubectl get pipelinerecovery {first['metadata']['name']} -n ci -o yaml "
              "# status only")
        print(yaml.safe_dump({"status": first["status"]}, sort_keys=False, width=100).rstrip())
        await _print_own_jobs(cluster, first)
        recovered = sorted((i for i in items if (i.get("status") or {}).get("phase")
                            == "Recovered"), key=lambda i: i["status"]["remediation"]["action"])
        for item in recovered[-1:]:  # one automatic recovery, as remediation recorded it
            print(f"\n$ kubectl get pipelinerecovery {item['metadata']['name']} -n ci "
                  "-o jsonpath='{.status.remediation}'")
            print(yaml.safe_dump({"remediation": item["status"]["remediation"]},
                                 sort_keys=False, width=100).rstrip())
    return 0


def _from_kubeconfig(path: Path) -> Any:
    import kopf

    config = yaml.safe_load(path.read_text())
    server = config["clusters"][0]["cluster"]["server"]
    return kopf.ConnectionInfo(server=server, default_namespace=NS)


def _missing_parts() -> str | None:
    """The demo needs the emulator (an optional dependency) and the CRD from a source checkout."""
    try:
        import kmock  # noqa: F401
    except ImportError:
        return "the demo needs KMock's emulator: pip install 'pipeline-recovery[demo]'"
    if not CRD.is_file():
        return f"the demo needs the CRD at {CRD}: run it from a checkout (make demo)"
    return None


def run_demo(args: argparse.Namespace) -> int:
    problem = _missing_parts()
    if problem:
        print(f"pipeline-recovery demo: {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.ERROR)
    try:
        return asyncio.run(_demo(float(getattr(args, "timeout", 60.0))))
    except KeyboardInterrupt:
        return 130
