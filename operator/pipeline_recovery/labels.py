"""Names the operator shares with the cluster: API group, CRD coordinates, labels, annotations."""

from __future__ import annotations

GROUP = "pipelinerecovery.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "PipelineRecovery"
PLURAL = "pipelinerecoveries"

# On Jobs and Pods the operator creates (remediation); their failures are never new incidents,
# they are routed to the remediation module instead.
INCIDENT_LABEL = f"{GROUP}/incident"
# On PipelineRecovery objects the watch created: which kind of object failed.
TARGET_KIND_LABEL = f"{GROUP}/target-kind"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "pipeline-recovery"

# kopf keeps its handler progress here (on PipelineRecovery objects only, never on workloads).
KOPF_ANNOTATION_PREFIX = GROUP

# Component name in Kubernetes Events the operator posts.
EVENT_COMPONENT = "pipeline-recovery"

# Job-to-Pod links set by the Job controller (both spellings exist across versions).
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
CONTROLLER_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
