#!/usr/bin/env bash
# Real-cluster tier: kind cluster, the operator image built and loaded, CRDs and manifests
# applied, two failing pipeline steps (the seed's npm ENOENT build, an OOM-killed build), and
# their PipelineRecovery diagnoses and the OOM recovery awaited. Skips (exit 0, one line) where
# there is no container engine or no kind. KEEP_CLUSTER=1 keeps the cluster for a look after.
set -euo pipefail
cd "$(dirname "$0")/../.."

IMG="${IMG:-pipeline-recovery:dev}"
KIND_CLUSTER="${KIND_CLUSTER:-pipeline-recovery}"
TIMEOUT="${E2E_TIMEOUT:-300}"
SYSTEM_NS=pipeline-recovery-system
E2E_NS=pipeline-recovery-e2e

if ! command -v kind >/dev/null 2>&1; then
  echo "e2e skipped: kind is not installed (nothing was tested)"
  exit 0
fi
if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  echo "e2e skipped: no container engine answers 'docker info' (nothing was tested)"
  exit 0
fi
if ! command -v kubectl >/dev/null 2>&1; then
  echo "e2e skipped: kubectl is not installed (nothing was tested)"
  exit 0
fi

log() { printf '[e2e] %s\n' "$*"; }

CONTEXT="kind-${KIND_CLUSTER}"
k() { kubectl --context "$CONTEXT" "$@"; }

dump() {
  log "FAILED; state of the cluster follows"
  k get pipelinerecoveries -A -o yaml || true
  k -n "$E2E_NS" get jobs,pods -o wide || true
  k -n "$SYSTEM_NS" get pods -o wide || true
  k -n "$SYSTEM_NS" logs deployment/pipeline-recovery --all-containers --tail=200 || true
}

teardown() {
  if [[ "${KEEP_CLUSTER:-0}" == "1" ]]; then
    log "keeping cluster $KIND_CLUSTER (KEEP_CLUSTER=1)"
  else
    kind delete cluster --name "$KIND_CLUSTER" >/dev/null 2>&1 || true
  fi
}

created=0
if ! kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
  log "creating kind cluster $KIND_CLUSTER"
  kind create cluster --name "$KIND_CLUSTER" --wait 120s
  created=1
fi
if [[ "$created" == "1" ]]; then trap teardown EXIT; fi

log "building $IMG"
docker build -t "$IMG" .
kind load docker-image "$IMG" --name "$KIND_CLUSTER"

log "installing CRDs and the operator"
k apply -k crds/
k wait --for condition=established --timeout=60s \
  crd/pipelinerecoveries.pipelinerecovery.dev crd/clusterkopfpeerings.kopf.dev crd/kopfpeerings.kopf.dev
k apply -k overlays/kind/
if [[ "$IMG" != "pipeline-recovery:dev" ]]; then
  k -n "$SYSTEM_NS" set image deployment/pipeline-recovery "manager=$IMG"
fi
if ! k -n "$SYSTEM_NS" rollout status deployment/pipeline-recovery --timeout=180s; then
  dump; exit 1
fi

log "starting the failing pipeline steps"
k apply -f tests/e2e/namespace.yaml
for job in tests/e2e/npm-enoent-job.yaml tests/e2e/oom-job.yaml; do
  sed "s|image: pipeline-recovery:dev|image: ${IMG}|" "$job" | k apply -f -
done

# Prints FIELD of the PipelineRecovery whose target is Job $1 (empty until it exists).
field() {
  k -n "$E2E_NS" get pipelinerecoveries \
    -o jsonpath="{.items[?(@.spec.target.name==\"$1\")].status.$2}" 2>/dev/null || true
}

# Waits until FIELD of job $1's incident equals one of the remaining arguments.
await() {
  local job="$1" what="$2"; shift 2
  local deadline=$((SECONDS + TIMEOUT)) value=""
  while (( SECONDS < deadline )); do
    value="$(field "$job" "$what")"
    for want in "$@"; do
      if [[ "$value" == "$want" ]]; then log "$job: $what=$value"; return 0; fi
    done
    sleep 3
  done
  log "$job: $what is '${value}', wanted one of: $*"
  return 1
}

ok=1
await npm-build category missing-file || ok=0
await npm-build phase Diagnosed ManualActionRequired AwaitingApproval Remediating \
  Recovered RemediationFailed || ok=0
await oom-build category out-of-memory || ok=0
await oom-build phase Recovered || ok=0

if [[ "$ok" != "1" ]]; then dump; exit 1; fi
k -n "$E2E_NS" get pipelinerecoveries
log "passed: npm ENOENT diagnosed as missing-file, OOM-killed build recovered"
