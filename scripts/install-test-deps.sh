#!/usr/bin/env bash
# Installs what Tern's tests run besides cargo: Mosquitto and its clients (the reference broker
# for the benchmark and the third-party clients of the end-to-end tests), paho-mqtt 2.x, and
# openssl (the Kubernetes test control plane generates its service-account key with it).
# The Kubernetes binaries themselves come from scripts/kube-test-env.sh, which installs its own
# build tools (golang-1.19-go, golang-1.19-src, rsync, libpopt0, make, dpkg-dev and Debian's
# reflect2/json-iterator sources) the first time it builds.
# Idempotent and quiet when everything is already there.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "install-test-deps: need root (or sudo) to run: $*" >&2; exit 1; fi
}

missing_debs=()
command -v mosquitto_pub >/dev/null || missing_debs+=(mosquitto-clients)
[ -x /usr/sbin/mosquitto ] || missing_debs+=(mosquitto)
command -v openssl >/dev/null || missing_debs+=(openssl)
if [ ${#missing_debs[@]} -gt 0 ]; then
  echo "install-test-deps: installing ${missing_debs[*]}"
  as_root apt-get update -qq
  # policy-rc.d keeps the package from starting a system-wide mosquitto on port 1883.
  as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_debs[@]}"
  as_root rm -f /usr/sbin/policy-rc.d
fi

if ! python3 -c 'import paho.mqtt, sys; sys.exit(0 if paho.mqtt.__version__.startswith("2.") else 1)' 2>/dev/null; then
  echo "install-test-deps: installing paho-mqtt 2.x"
  python3 -m pip install --quiet --disable-pip-version-check 'paho-mqtt>=2,<3'
fi
