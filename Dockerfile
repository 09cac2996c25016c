# syntax=docker/dockerfile:1
# The operator image: a builder stage installs the package into a virtual environment, the
# final stage copies only that environment onto the same slim base and runs as UID 65532.
# The base is pinned by tag and by the digest of its multi-arch index; refresh both together
# (`docker buildx imagetools inspect python:3.11.11-slim-bookworm`).

FROM python:3.11.11-slim-bookworm@sha256:081075da77b2b55c23c088251026fb69a7b2bf92471e491ff5fd75c192fd38e5 AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Every dependency (hyperscan and google-re2 included) ships manylinux wheels for amd64 and
# arm64 (--only-binary keeps it that way). Only the project's own native scan engine is
# compiled, against Debian's Vectorscan; libhs.so.5 is copied beside it (the extension's
# rpath is $ORIGIN), so the final stage needs no package manager.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libvectorscan-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv --without-pip /opt/venv
COPY pyproject.toml setup.py README.md ./
COPY operator ./operator
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && pip --python /opt/venv/bin/python install --only-binary=:all: /wheels/*.whl \
    && cp "$(gcc -print-file-name=libhs.so.5)" \
       /opt/venv/lib/python3.11/site-packages/pipeline_recovery/ \
    && /opt/venv/bin/python -c "import pipeline_recovery._native_scan"

FROM python:3.11.11-slim-bookworm@sha256:081075da77b2b55c23c088251026fb69a7b2bf92471e491ff5fd75c192fd38e5
LABEL org.opencontainers.image.title="pipeline-recovery" \
      org.opencontainers.image.description="Kubernetes operator that diagnoses failed CI/CD pipeline runs and recovers them safely" \
      org.opencontainers.image.licenses="Apache-2.0"
# A named user for UID 65532 so tools that look the user up (getpass) work outside Kubernetes.
RUN groupadd --gid 65532 nonroot \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin nonroot
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 65532:65532
# 8080: Prometheus metrics; 8081: kopf's liveness endpoint (/healthz).
EXPOSE 8080 8081
# Kubernetes ignores HEALTHCHECK and uses the Deployment's probes; this serves `docker run`.
# The operator answers on /healthz only when started with --liveness, as the Deployment does.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=4)"]
ENTRYPOINT ["pipeline-recovery", "run"]
CMD ["--all-namespaces", "--liveness=http://0.0.0.0:8081/healthz"]
