"""`pipeline-recovery classify` end to end through cli.main and a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline_recovery.cli import main

FIX = Path(__file__).resolve().parents[1] / "fixtures"
SEED = FIX / "logs" / "missing-file" / "seed-npm-enoent.log"


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", str(SEED), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["category"] == "missing-file" and out["severity"] == "HIGH"
    assert out["transient"] is False and out["autoFixable"] is True
    assert out["evidence"]["captures"]["path"] == "/app/node_modules/.cache"
    assert out["evidence"]["patternId"] == "missing-file-enoent-path"
    assert out["evidence"]["source"] == "log" and out["evidence"]["line"] == 9
    assert len(out["fingerprint"]) == 16 and out["engine"] in {"native", "hyperscan", "re2", "re"}
    assert 0 < out["confidence"] <= 1 and out["rootCause"] and out["solution"]


def test_human_output_with_status(capsys: pytest.CaptureFixture[str]) -> None:
    log = FIX / "logs" / "test-failure" / "jest.log"
    assert main(["classify", str(log), "--status", str(FIX / "status" / "pod-oomkilled.json")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("category:    out-of-memory")
    assert "fingerprint:" in out and "solution:" in out and "evidence:" in out


def _classify_json(capsys: pytest.CaptureFixture[str], status: Path) -> dict[str, object]:
    assert main(["classify", str(SEED), "--status", str(status), "--json"]) == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_status_as_yaml_or_in_a_list_reads_like_json(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    pod = json.loads((FIX / "status" / "pod-oomkilled.json").read_text())
    expected = _classify_json(capsys, FIX / "status" / "pod-oomkilled.json")
    assert expected["category"] == "out-of-memory"
    as_yaml = tmp_path / "pod.yaml"  # `kubectl get pod -o yaml`
    as_yaml.write_text(yaml.safe_dump(pod))
    assert _classify_json(capsys, as_yaml)["category"] == "out-of-memory"
    # `kubectl get pods -o json`: the failed pod of the list is the one read.
    running = {"kind": "Pod", "metadata": {"name": "web"}, "status": {"phase": "Running"}}
    listed = tmp_path / "pods.json"
    listed.write_text(json.dumps({"kind": "List", "items": [running, pod]}))
    assert _classify_json(capsys, listed)["category"] == "out-of-memory"


def test_ai_without_llm_falls_back(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", str(SEED), "--ai", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["category"] == "missing-file"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["classify", "/definitely/missing.log"], "cannot read log file /definitely/missing.log"),
        (["classify", str(FIX / "status")], "cannot read log file"),
        (["classify", str(SEED), "--status", "/nope.json"], "cannot read status file"),
        (["classify", str(SEED), "--status", str(SEED)], "is not valid JSON or YAML"),
    ],
)
def test_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], argv: list[str],
                               needle: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_extra_pattern_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "mine.yaml"
    bad.write_text("- id: mine\n  category: network\n  priority: 5\n  regex: '(x'\n  solution: s\n")
    monkeypatch.setenv("PIPELINE_RECOVERY_EXTRA_PATTERN_FILES", str(bad))
    assert main(["classify", str(SEED)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: rule mine: bad regex" in err and err.count("\n") == 1


def test_stdin_subprocess_binary_and_empty() -> None:
    cmd = [sys.executable, "-m", "pipeline_recovery.cli", "classify", "-", "--json"]
    data = b"\x00\xff\xfe\x1b[31mNo space left on device\x1b[0m\n" + bytes(range(256))
    proc = subprocess.run(cmd, input=data, capture_output=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["category"] == "disk-full"
    empty = subprocess.run(cmd, input=b"", capture_output=True, check=False, timeout=60)
    assert empty.returncode == 0 and json.loads(empty.stdout)["category"] == "unknown"


def test_a_reader_that_leaves_early_is_not_an_error(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    log.write_bytes(b"npm ERR! code ETIMEDOUT\n" * 50)
    cmd = [sys.executable, "-m", "pipeline_recovery.cli", "classify", str(log)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head -0`: nobody reads the diagnosis
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0 and b"Traceback" not in err, err
