"""`pipeline-recovery demo` (what `make demo` runs): exits 0 and shows diagnoses and recoveries."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# TARGET -> (CATEGORY, PHASE, ACTION) the demo's table must show.
EXPECTED = {
    "Job/frontend-build": ("missing-file", "Recovered", "create-directory"),
    "Job/api-deps": ("network", "Recovered", "retry"),
    "Job/android-build": ("out-of-memory", "Recovered", "retry-with-more-memory"),
    "Job/api-tests": ("test-failure", "ManualActionRequired", "none"),
    "Pod/deploy-staging": ("image-pull", "ManualActionRequired", "none"),
    "(inline log)": ("auth", "ManualActionRequired", "none"),
}


@pytest.fixture(scope="module")
def demo() -> subprocess.CompletedProcess[str]:
    # Settings come from the demo itself, not from whatever the test runner's env holds.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_RECOVERY_")}
    return subprocess.run(
        [sys.executable, "-m", "pipeline_recovery.cli", "demo", "--timeout", "60"],
        capture_output=True, text=True, env=env, timeout=180, check=False,
    )


def table_rows(out: str) -> dict[str, tuple[str, ...]]:
    lines = out.split("$ kubectl get pipelinerecoveries -n ci\n", 1)[1].splitlines()
    header, rows = lines[0].split(), []
    assert header == ["NAME", "TARGET", "CATEGORY", "SEVERITY", "PHASE", "ACTION", "AGE"]
    for line in lines[1:]:
        if not line.strip():
            break
        rows.append(line.split("   "))
    parsed = [tuple(cell.strip() for cell in row if cell.strip()) for row in rows]
    return {row[1]: (row[2], row[4], row[5]) for row in parsed}


def test_demo_exits_zero_and_recovers(demo: subprocess.CompletedProcess[str]) -> None:
    assert demo.returncode == 0, demo.stderr
    rows = table_rows(demo.stdout)
    assert rows == EXPECTED
    assert sum(phase == "Recovered" for _, phase, _ in rows.values()) >= 1


def test_demo_shows_the_seed_npm_build_recovered_by_create_directory(
    demo: subprocess.CompletedProcess[str],
) -> None:
    assert demo.returncode == 0, demo.stderr
    out = demo.stdout
    # The seed's log, as the diagnosis quotes it, and the fixed argv of our Job on the claim.
    assert "npm ERR! enoent ENOENT: no such file or directory, mkdir" in out
    assert "rootCause: The path /app/node_modules/.cache did not exist" in out
    argv_line = next(line for line in out.splitlines() if line.startswith('["mkdir"'))
    argv, volumes = argv_line.split("] [", 1)
    assert json.loads(argv + "]") == ["mkdir", "-p", "--", "/mnt/target/.cache"]
    assert json.loads("[" + volumes) == [
        {"name": "target", "persistentVolumeClaim": {"claimName": "npm-cache"}}]
    assert "create-directory worked: Job frontend-build-retry-1 completed" in out
