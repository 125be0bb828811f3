#!/usr/bin/env bash
# Security scan of the deployment: render every overlay and run checkov on the
# manifests (config deploy/k8s/.checkov.yaml, skips justified in CHECKOV.md),
# then on the root Dockerfile. Exits non-zero on any failed check.
#
#   bash deploy/k8s/scan.sh
#   bash deploy/k8s/scan.sh --install-only    # just make sure checkov is there (scripts/install.sh)
#
# checkov: $CHECKOV, else `checkov` on PATH, else a virtualenv under
# ${CHECKOV_VENV:-~/.cache/feedback-pipeline/checkov-venv} (created on first use with
# the pinned CHECKOV_VERSION; checkov pins dozens of its own dependencies, which
# conflict with the project's, so it stays out of the project's venv).
set -euo pipefail

CHECKOV_VERSION=3.3.30

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x "$root/.venv/bin/python" ]; then python="$root/.venv/bin/python"; else python=python3; fi
fi

checkov="${CHECKOV:-}"
if [ -z "$checkov" ]; then
  if command -v checkov >/dev/null 2>&1; then
    checkov=checkov
  else
    venv="${CHECKOV_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/feedback-pipeline/checkov-venv}"
    if [ ! -x "$venv/bin/checkov" ] || [ "$("$venv/bin/checkov" --version 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
      echo "installing checkov $CHECKOV_VERSION into $venv" >&2
      python3 -m venv "$venv"
      "$venv/bin/pip" install --quiet "checkov==$CHECKOV_VERSION"
    fi
    checkov="$venv/bin/checkov"
  fi
fi
if [ "${1:-}" = "--install-only" ]; then
  "$checkov" --version
  exit 0
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

for overlay in "$here"/overlays/*/; do
  name="$(basename "$overlay")"
  if command -v kubectl >/dev/null 2>&1 && kubectl kustomize "$overlay" >"$out/$name.yaml" 2>"$out/$name.err"; then
    :
  else
    "$python" "$here/render.py" "$overlay" >"$out/$name.yaml"
  fi
  echo "rendered overlay $name: $(grep -c '^kind:' "$out/$name.yaml") objects"
done
# The cluster-wide node setting for Elasticsearch (its own namespace; inline skips, CHECKOV.md).
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize "$here/node-tuning" >"$out/node-tuning.yaml" 2>"$out/node-tuning.err"; then
  :
else
  "$python" "$here/render.py" "$here/node-tuning" >"$out/node-tuning.yaml"
fi
rm -f "$out"/*.err

"$checkov" --config-file "$here/.checkov.yaml" --skip-download -d "$out"
"$checkov" --framework dockerfile --compact --quiet --skip-download -f "$root/Dockerfile"
echo "checkov: no failed checks"
