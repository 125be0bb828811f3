#!/usr/bin/env bash
# Install everything and run the whole test suite (unit, integration on the real
# Kafka and Elasticsearch the suite starts itself once, end to end).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
mkdir -p artifacts
exec .venv/bin/pytest -q -p no:cacheprovider --junitxml=artifacts/junit.xml "$@"
