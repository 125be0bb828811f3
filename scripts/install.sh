#!/usr/bin/env bash
# Install everything the project needs into .venv (idempotent). Downloads are cached
# under the user's cache folder (pip's cache, ~/.cache/feedback-pipeline for Kafka
# and Elasticsearch), so a second run is fast.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade "pip>=23.2"
.venv/bin/python -m pip install --quiet -e ".[test]"

# System tools used by tests: docker-compose (v1) validates the compose file offline,
# promtool checks Prometheus rules, chromium drives the console's browser test.
want=()
command -v docker-compose >/dev/null 2>&1 || want+=(docker-compose)
command -v promtool >/dev/null 2>&1 || want+=(prometheus)
[ -x /usr/bin/chromium ] || want+=(chromium)
if [ "${#want[@]}" -gt 0 ] && [ "${FEEDBACK_SKIP_APT:-0}" != "1" ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null \
    || echo "warning: could not install ${want[*]}; the tests that need them will say so" >&2
fi

# checkov scans the Kubernetes manifests and the Dockerfile (tests/unit/test_deploy_k8s.py);
# in its own venv under the user cache, pinned, because its dependencies clash with ours.
bash deploy/k8s/scan.sh --install-only >/dev/null

# Java 17 and Maven start Kafka and Elasticsearch (fetched from Maven Central on first use).
for tool in java mvn; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool is required (Java 17+ and Maven)" >&2; exit 1; }
done
