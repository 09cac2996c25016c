"""kopf's settings from ours, and the cluster login (emulator, service account, kubeconfig)."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from pipeline_recovery.labels import GROUP
from pipeline_recovery.runtime import Runtime


def configure(settings: kopf.OperatorSettings, rt: Runtime) -> None:
    s = rt.settings
    _ = rt.classifier  # compile the pattern table now, not inside the first diagnosis
    # Handler progress lives in annotations of our own PipelineRecovery objects; Jobs and Pods
    # are only watched through on.event, which stores nothing on them.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration")
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.posting.level = logging.WARNING  # our own Events say what happened
    settings.peering.name = s.peering_name
    settings.peering.mandatory = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.error_backoffs = [1, 2, 4, 8, 15]
    settings.networking.request_timeout = 60
    settings.execution.max_workers = 4
    if rt.fast:  # the demo, tests and bench: an emulator on loopback answers at once
        settings.batching.idle_timeout = 0.5
        settings.batching.exit_timeout = 0.5
        settings.networking.error_backoffs = [0.1, 0.2, 0.5]
        settings.watching.reconnect_backoff = 0.05
        settings.watching.server_timeout = 30
        settings.watching.client_timeout = 35
        settings.persistence.consistency_timeout = 1.0


def _has_credentials(info: kopf.ConnectionInfo) -> bool:
    """Whether the connection carries a token, basic auth or a client certificate of its own;
    none of them and a plain-http server (the emulator) means there is nothing to add."""
    if info.server.startswith("http://"):
        return True
    return bool(info.token or info.username or info.certificate_path or info.certificate_data)


def login(rt: Runtime, **kwargs: Any) -> Any:
    """The emulator's endpoint when given, else the service account, else kubeconfig."""
    info = rt.connection
    if info is None:
        info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
    if info is not None and not _has_credentials(info):
        # kopf's kubeconfig reader cannot run exec plugins or auth-providers (EKS, GKE, OIDC);
        # the official client library can, and hands back the token they produced.
        info = kopf.login_via_client(**kwargs) or info
    if info is None:  # retrying cannot make credentials appear: stop with one clear line
        raise kopf.PermanentError("no cluster credentials: no in-cluster service account, "
                                  "no KUBECONFIG and no ~/.kube/config")
    rt.use_connection(info)
    return info
