"""`pipeline-recovery run`: settings, logging, metrics, then kopf; and the embedded variant the
demo, tests and bench use against the emulator."""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import threading
import time
from collections.abc import Collection
from typing import Any

from pipeline_recovery import metrics
from pipeline_recovery.runtime import Runtime
from pipeline_recovery.settings import SettingsError, load_settings


def _priority() -> int:
    # kopf freezes peers of equal priority; the newest replica gets the highest, ties unlikely.
    return int(time.time() * 1000) % 10**9 * 1000 + random.randint(0, 999)  # noqa: S311


def credentials_problem() -> str | None:
    """None when kopf's login will find credentials (in-cluster service account or kubeconfig);
    else why not, in one line. kopf would only log a failed login and wait for ever."""
    import kopf

    settings, quiet = kopf.OperatorSettings(), logging.getLogger("pipeline_recovery.login")
    try:
        if (kopf.login_with_service_account(settings=settings, logger=quiet)
                or kopf.login_with_kubeconfig(settings=settings, logger=quiet)):
            return None
    except Exception as exc:  # unreadable kubeconfig: YAML errors, missing files, bad fields
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"cannot read the cluster credentials: {type(exc).__name__}: {first}"
    return ("no cluster credentials found: not in a cluster (no service account), "
            "KUBECONFIG unset and no ~/.kube/config")


def run_operator(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.namespace:
        overrides["namespaces"] = list(args.namespace)
    if args.all_namespaces:
        overrides["all_namespaces"] = True
    if args.standalone:
        overrides["standalone"] = True
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(f"pipeline-recovery: {exc}", file=sys.stderr)
        return 2
    from pipeline_recovery.logging_setup import configure_logging

    configure_logging(settings, debug=bool(args.verbose))
    if settings.metrics_port:
        try:
            metrics.serve(settings.metrics_port)
        except OSError as exc:
            print(f"pipeline-recovery: metrics port {settings.metrics_port}: {exc}",
                  file=sys.stderr)
            return 2
    problem = credentials_problem()
    if problem is not None:
        print(f"pipeline-recovery: {problem}", file=sys.stderr)
        return 2
    rt = Runtime(settings)
    clusterwide = settings.all_namespaces or not settings.namespaces
    try:
        asyncio.run(run_embedded(
            rt, namespaces=settings.namespaces, clusterwide=clusterwide,
            standalone=settings.standalone, liveness=getattr(args, "liveness", None),
            priority=_priority()))
    except KeyboardInterrupt:
        return 130
    return 0


async def run_embedded(
    rt: Runtime, *, namespaces: Collection[str] = (), clusterwide: bool = False,
    standalone: bool = True, stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None, liveness: str | None = None,
    priority: int = 0,
) -> None:
    """kopf with our handlers, in the current event loop, until stop_flag is set."""
    import kopf

    from pipeline_recovery import handlers  # noqa: F401 - registers the handlers

    logging.getLogger("kopf.objects").setLevel(
        logging.WARNING if rt.fast else logging.getLogger().level or logging.INFO)
    await kopf.operator(
        clusterwide=clusterwide, namespaces=list(namespaces), standalone=standalone,
        peering_name=None if standalone else rt.settings.peering_name, priority=priority,
        stop_flag=stop_flag, ready_flag=ready_flag, liveness_endpoint=liveness,
        memo=kopf.Memo(runtime=rt),
    )


class EmbeddedOperator:
    """`async with EmbeddedOperator(rt, namespaces=[...]):` runs kopf in its own thread and event
    loop (kopf treats every task of its loop as its own and cancels them at exit)."""

    def __init__(self, rt: Runtime, *, namespaces: Collection[str] = (),
                 clusterwide: bool = False, startup_timeout: float = 15.0) -> None:
        self.rt = rt
        self.namespaces = list(namespaces)
        self.clusterwide = clusterwide or not self.namespaces
        self.startup_timeout = startup_timeout
        self.stop_flag = threading.Event()
        self.ready_flag = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def _main(self) -> None:
        try:
            asyncio.run(run_embedded(
                self.rt, namespaces=self.namespaces, clusterwide=self.clusterwide,
                stop_flag=self.stop_flag, ready_flag=self.ready_flag))
        except BaseException as exc:  # reported by start()/stop() in the caller's thread
            self.error = exc
            self.ready_flag.set()

    async def start(self) -> EmbeddedOperator:
        self.thread = threading.Thread(target=self._main, name="kopf-operator", daemon=True)
        self.thread.start()
        ready = await asyncio.to_thread(self.ready_flag.wait, self.startup_timeout)
        if not ready or self.error is not None:
            await self.stop()
            raise RuntimeError(f"the embedded operator did not start: {self.error!r}")
        return self

    async def stop(self) -> None:
        self.stop_flag.set()
        if self.thread is not None:
            await asyncio.to_thread(self.thread.join, 20)
            self.thread = None

    async def __aenter__(self) -> EmbeddedOperator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
