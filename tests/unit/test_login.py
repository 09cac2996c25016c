"""Cluster login: kubeconfig users whose token comes from an exec plugin (EKS, GKE, OIDC)."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import kopf
import pytest

from pipeline_recovery import kopf_setup
from pipeline_recovery.runtime import Runtime
from pipeline_recovery.settings import load_settings

TOKEN = "exec-plugin-token-7f3a"


def _kubeconfig(tmp_path: Path) -> Path:
    plugin = tmp_path / "token-plugin"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "kind": "ExecCredential",
        "status": {"token": TOKEN},
    }
    plugin.write_text(f"#!{sys.executable}\nprint({json.dumps(json.dumps(credential))})\n")
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "ci",
        "clusters": [{"name": "ci", "cluster": {"server": "https://127.0.0.1:6443",
                                                "insecure-skip-tls-verify": True}}],
        "users": [{"name": "ci", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": str(plugin),
            "interactiveMode": "Never",
        }}}],
        "contexts": [{"name": "ci", "context": {"cluster": "ci", "user": "ci"}}],
    }
    path = tmp_path / "config"
    path.write_text(json.dumps(config))
    return path


_LOGIN = """
import logging, kopf
from pipeline_recovery import kopf_setup
from pipeline_recovery.runtime import Runtime
from pipeline_recovery.settings import load_settings
rt = Runtime(load_settings(metrics_port=0, llm_api_key=None))
info = kopf_setup.login(rt, settings=kopf.OperatorSettings(), logger=logging.getLogger("t"))
print(info.server, info.token, rt.client is not None)
"""


def test_exec_plugin_users_get_the_token_the_plugin_printed(tmp_path: Path) -> None:
    # A fresh process: the client library reads KUBECONFIG when it is first imported.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE")}
    env.update(KUBECONFIG=str(_kubeconfig(tmp_path)), HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", _LOGIN], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["https://127.0.0.1:6443", TOKEN, "True"]


def test_token_users_keep_kopfs_own_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": "static-token"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    rt = Runtime(load_settings(metrics_port=0, llm_api_key=None))
    info = kopf_setup.login(rt, settings=kopf.OperatorSettings(),
                            logger=logging.getLogger("test"))
    assert info.token == "static-token"
    assert rt.client is not None
