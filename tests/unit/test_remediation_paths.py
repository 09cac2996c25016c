"""Paths from logs are refused unless they stay, plainly, inside a claim the failed pod mounted."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline_recovery.remediation.paths import PathRefused, locate_in_claim, split_path

POD_SPEC: dict[str, Any] = {
    "volumes": [
        {"name": "ws", "persistentVolumeClaim": {"claimName": "workspace"}},
        {"name": "cache", "persistentVolumeClaim": {"claimName": "npm-cache"}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "cfg"}},
    ],
    "containers": [
        {
            "name": "build",
            "image": "node:20",
            "volumeMounts": [
                {"name": "ws", "mountPath": "/workspace"},
                {"name": "cache", "mountPath": "/workspace/.npm", "subPath": "team-a"},
                {"name": "tmp", "mountPath": "/tmp"},
                {"name": "cfg", "mountPath": "/etc/app"},
            ],
        }
    ],
}


def test_path_inside_claim_is_located() -> None:
    where = locate_in_claim("/workspace/build/out", POD_SPEC, "build")
    assert (where.claim, where.mount_path, where.relative) == (
        "workspace",
        "/workspace",
        "build/out",
    )
    assert where.in_job == "/mnt/target/build/out"


def test_deepest_mount_wins_and_subpath_is_kept() -> None:
    where = locate_in_claim("/workspace/.npm/_cacache/index", POD_SPEC, "build")
    assert (where.claim, where.relative) == ("npm-cache", "team-a/_cacache/index")


def test_double_slashes_collapse() -> None:
    assert locate_in_claim("/workspace//a///b/", POD_SPEC, None).relative == "a/b"


@pytest.mark.parametrize(
    "path",
    [
        "/workspace/../etc/passwd",
        "/workspace/a/../../etc",
        "/workspace/./a",
        "workspace/a",
        "../workspace/a",
        "/etc/passwd",
        "/tmp/build",  # emptyDir, not a claim
        "/etc/app/x",  # configMap
        "/workspacefoo/a",  # prefix of the mount path, not inside it
        "/workspace/a;rm -rf /",
        "/workspace/a|b",
        "/workspace/a&b",
        "/workspace/$HOME",
        "/workspace/`id`",
        "/workspace/$(id)",
        "/workspace/a b",
        "/workspace/a\nb",
        "/workspace/a\x00b",
        "/workspace/a\rb",
        "/workspace/*",
        "/workspace/a>b",
        "/workspace/\u2025/etc",  # two-dot leader
        "/workspace/\uff0e\uff0e/etc",  # fullwidth full stops
        "/workspace\u2215..\u2215etc",  # division slash
        "/workspace/a\u202eb",  # right-to-left override
        "/workspace/a\u200bb",  # zero-width space
        "/workspace/" + "a" * 256,
        "/workspace/" + "a/" * 600,
        "",
    ],
)
def test_refused(path: str) -> None:
    with pytest.raises(PathRefused):
        locate_in_claim(path, POD_SPEC, "build")


def test_other_container_mounts_do_not_count() -> None:
    with pytest.raises(PathRefused):
        locate_in_claim("/workspace/a", POD_SPEC, "sidecar")


@pytest.mark.parametrize("value", [None, 42, b"/workspace/a", ["/workspace"]])
def test_non_strings_refused(value: object) -> None:
    with pytest.raises(PathRefused, match="not a string"):
        split_path(value)


def test_odd_mounts_are_skipped() -> None:
    spec = {
        "volumes": [{"name": "ws", "persistentVolumeClaim": {"claimName": "ws"}}],
        "containers": [
            {
                "name": "c",
                "volumeMounts": [
                    {"name": "ws", "mountPath": "/w", "subPathExpr": "$(POD)"},
                    {"name": "ws", "mountPath": "/x", "subPath": "../up"},
                ],
            }
        ],
    }
    for path in ("/w/a", "/x/a"):
        with pytest.raises(PathRefused):
            locate_in_claim(path, spec, "c")
