#!/usr/bin/env bash
# Run the unit tests on every supported Python this machine has (3.11, 3.12, 3.13), each in its
# own virtual environment under the user's cache folder. An interpreter is taken from PATH
# (python3.X) or from pyenv's versions; a version that is not here is reported, not failed.
# Usage: ./scripts/test-pythons.sh [pytest args...]   (default: tests/unit)
set -uo pipefail
cd "$(dirname "$0")/.."
cache="${XDG_CACHE_HOME:-$HOME/.cache}/feedback-pipeline/pythons"
mkdir -p "$cache"
args=("$@")
[ "${#args[@]}" -eq 0 ] && args=(tests/unit)

find_python() {  # $1 = 3.X; prints a working interpreter or nothing
  local v="$1" candidate
  for candidate in "python$v" $(ls -d "$(pyenv root 2>/dev/null || echo /nonexistent)/versions/$v".*/bin/python 2>/dev/null | sort -V -r); do
    if "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$v'.split('.'))))" >/dev/null 2>&1; then
      command -v "$candidate"
      return 0
    fi
  done
}

status=0
summary=()
for v in 3.11 3.12 3.13; do
  py="$(find_python "$v")"
  if [ -z "$py" ]; then
    summary+=("Python $v: not installed here, skipped")
    continue
  fi
  venv="$cache/venv-$v"
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
  if ! { "$venv/bin/python" -m pip install --quiet --upgrade "pip>=23.2" && "$venv/bin/python" -m pip install --quiet -e ".[test]"; } >"$cache/install-$v.log" 2>&1; then
    summary+=("Python $v: install FAILED (see $cache/install-$v.log)")
    status=1
    continue
  fi
  echo "== Python $v ($py)" >&2
  if "$venv/bin/python" -m pytest -q -p no:cacheprovider "${args[@]}"; then
    summary+=("Python $v: passed")
  else
    summary+=("Python $v: FAILED")
    status=1
  fi
done
# The editable installs above point at this checkout; .venv's own install is untouched.
printf '%s\n' "${summary[@]}"
exit $status
