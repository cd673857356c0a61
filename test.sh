#!/usr/bin/env bash
# Every check a change must pass: the workspace tests, the loom model checks of
# the concurrency cores, clippy with warnings denied, and rustfmt.
set -euo pipefail
cd "$(dirname "$0")"

echo "== cargo test --workspace"
cargo test --workspace

echo "== loom model checks (RUSTFLAGS=--cfg loom, release, own target dir)"
# Own target dir: a different RUSTFLAGS would otherwise invalidate the normal build.
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
  cargo test --release -p vc-ledger -p vc-actors --lib -- loom

echo "== cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "all checks passed"
