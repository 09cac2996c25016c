"""Process-wide state the handlers share through kopf's memo: settings, API client, classifier."""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from typing import Any

from pipeline_recovery import kube, metrics
from pipeline_recovery.selectors import Selector, parse_selector
from pipeline_recovery.settings import Settings

# kopf hands handlers a Logger or a LoggerAdapter (with the object in its extra).
Logger = logging.Logger | logging.LoggerAdapter[Any]

_CLASSIFIERS: dict[tuple[Any, ...], Any] = {}


@dataclass
class Runtime:
    """One per operator process. kopf copies the memo per object, so this is held by reference
    (memo.runtime) and all mutable state lives here."""

    settings: Settings
    # Set for the demo and tests (the emulator); None means the standard login ways.
    connection: Any = None
    client: kube.KubeClient | None = None
    fast: bool = False  # short kopf timeouts: emulator on loopback (demo, tests, bench)
    retries: int = 5
    backoff: float = 0.2
    _classifier: Any = None
    # uids of targets whose PipelineRecovery is known to exist: skips a POST on every replay.
    known_targets: set[str] = field(default_factory=set)
    rechecks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    phases: dict[str, str] = field(default_factory=dict)  # PipelineRecovery uid -> phase
    # kopf's index of every PipelineRecovery (namespace -> compact bodies, flow.index_entry);
    # complete before any handler runs, live after. None until the first handler call.
    recovery_index: Any = None
    # Room for the AI and remediation steps' process state (analyst, rate limiters, ...).
    extras: dict[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def watch_selector(self) -> Selector:
        """settings.watch_selector, parsed once (settings already validated it)."""
        return parse_selector(self.settings.watch_selector)

    @property
    def kube(self) -> kube.KubeClient:
        if self.client is None:
            raise RuntimeError("not logged in to the cluster yet")
        return self.client

    def use_connection(self, info: Any) -> None:
        """(Re)build the API client from kopf's ConnectionInfo after a login."""
        old = self.client
        self.client = kube.KubeClient.from_connection_info(
            info, retries=self.retries, backoff=self.backoff)
        if old is not None:
            task = asyncio.get_event_loop().create_task(old.aclose())
            self.extras.setdefault("_closing", set()).add(task)

    @property
    def classifier(self) -> Any:
        if self._classifier is None:
            key = (tuple(self.settings.extra_pattern_files), self.settings.scan_engine)
            if key not in _CLASSIFIERS:  # compiling the table is the slow part of a start
                from pipeline_recovery.classifier import Classifier

                _CLASSIFIERS[key] = Classifier.load(extra_files=key[0], engine=key[1])
            self._classifier = _CLASSIFIERS[key]
        return self._classifier

    def track_phase(self, uid: str, phase: str | None) -> None:
        """Keep the incidents{phase} gauge equal to what this process knows."""
        if phase is None:
            self.phases.pop(uid, None)
        else:
            self.phases[uid] = phase
        counts: dict[str, int] = {}
        for p in self.phases.values():
            counts[p] = counts.get(p, 0) + 1
        metrics.set_incident_phases(counts)

    async def aclose(self) -> None:
        for task in self.rechecks.values():
            task.cancel()
        analyst = self.extras.pop("analyst", None)  # the AI step's HTTP client (llm.step)
        if analyst is not None:
            await analyst.aclose()
        if self.client is not None:
            await self.client.aclose()
            self.client = None
