"""Contract-tier fixtures: one run of every operator scenario on the emulator, shared per module."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kmock_cluster import run_contract_scenarios


@pytest.fixture(scope="session")
def operator_run() -> tuple[list[dict[str, Any]], list[Any]]:
    """(PipelineRecovery objects the operator wrote, every request the emulator served)."""
    return asyncio.run(run_contract_scenarios())
