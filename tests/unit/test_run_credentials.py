"""`pipeline-recovery run` without cluster credentials stops at once with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")}
    base.update(HOME=str(tmp_path), PIPELINE_RECOVERY_METRICS_PORT="0", **env)
    return subprocess.run(
        [sys.executable, "-c", "from pipeline_recovery.cli import main; raise SystemExit(main())",
         "run"],
        env=base, capture_output=True, text=True, timeout=60, check=False)


def test_no_credentials_exits_with_one_line(tmp_path: Path) -> None:
    done = _run(tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [lines[0]] and "no cluster credentials found" in lines[0]
    assert "KUBECONFIG" in lines[0] and "~/.kube/config" in lines[0]


def test_unreadable_kubeconfig_exits_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "config"
    bad.write_text("clusters: [\n")
    done = _run(tmp_path, KUBECONFIG=str(bad))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot read the cluster credentials" in lines[0]
