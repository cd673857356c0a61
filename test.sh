#!/usr/bin/env bash
# Every check a change must pass: the dependency policy (cargo-deny: bans,
# licenses, sources), the workspace tests, the loom model checks of the
# concurrency cores, clippy with warnings denied, and rustfmt.
set -euo pipefail
cd "$(dirname "$0")"

echo "== cargo deny check bans licenses sources"
# Offline checks only: the advisory database lives on a git host these
# machines cannot reach (deny.toml says more). CI installs cargo-deny
# (.ci/run); elsewhere a missing cargo-deny is said, not fatal.
if cargo deny --version >/dev/null 2>&1; then
  cargo deny --log-level error check bans licenses sources
elif [ "${CI:-}" = "true" ]; then
  echo "cargo-deny is missing in CI: .ci/run should have installed it" >&2
  exit 1
else
  echo "cargo-deny not installed: skipped (cargo install --locked cargo-deny)"
fi

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
