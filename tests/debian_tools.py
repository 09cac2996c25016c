"""Tools from Debian's `prometheus` package that tests need: found, skipped, or failed in CI."""

from __future__ import annotations

import os
import shutil

import pytest


def required_tool(name: str) -> str:
    """Path of `name`; skips the test when it is missing, and fails it when CI is set."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not found: install Debian's `prometheus` package (`.ci/run` does)"
    if os.environ.get("CI"):
        pytest.fail(message + " -- required when CI is set")
    pytest.skip(message)
