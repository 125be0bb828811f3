#!/usr/bin/env bash
# Install, start a local Kafka + Elasticsearch + SMTP sink, run every service, send the
# sample set through every channel and print a summary. Exits non-zero if anything
# valid was not indexed or an expected email did not arrive.
set -euo pipefail
cd "$(dirname "$0")/.."
FEEDBACK_SKIP_APT="${FEEDBACK_SKIP_APT:-1}" ./scripts/install.sh
exec .venv/bin/feedback demo "$@"
