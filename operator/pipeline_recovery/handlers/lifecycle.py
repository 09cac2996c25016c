"""Operator start-up and cluster login handlers."""

from __future__ import annotations

from typing import Any

import kopf

from pipeline_recovery import kopf_setup


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    kopf_setup.configure(settings, memo.runtime)


@kopf.on.login()
def login(memo: Any, **kwargs: Any) -> Any:
    return kopf_setup.login(memo.runtime, **kwargs)


@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    await memo.runtime.aclose()
