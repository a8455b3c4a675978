#!/usr/bin/env bash
# Runs every test of the project, as CI does: formatting, lints, unit, end-to-end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --all-targets --locked
