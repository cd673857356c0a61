#!/usr/bin/env bash
# Every check a change must pass: the dependency policy (cargo-deny: bans,
# licenses, sources), the workspace tests (the log's on a PostgreSQL
# cluster this script starts and stops), the loom model checks of the
# concurrency cores, clippy with warnings denied, and rustfmt.
set -euo pipefail
cd "$(dirname "$0")"
# Bash counts the seconds since the script started; the last line says them.
SECONDS=0

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

echo "== PostgreSQL for the log's tests (scripts/pg-cluster.sh)"
# A primary and two synchronous standbys in a temporary directory for the
# tests of the log on PostgreSQL (VC_TEST_POSTGRES_URL); stopped and
# removed on exit. The fail-over test starts clusters of its own. Without
# PostgreSQL those tests are skipped with a notice; in CI (.ci/run installs
# it) that is a failure.
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
if [ -x "$PG_BIN/initdb" ]; then
  PG_CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/vc-pg-test.XXXXXX")
  export PG_CLUSTER_DIR
  # Three consecutive loopback ports nobody listens on.
  for base in $(seq 55432 10 55932); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$base") 2>/dev/null &&
      ! (exec 3<>"/dev/tcp/127.0.0.1/$((base + 1))") 2>/dev/null &&
      ! (exec 3<>"/dev/tcp/127.0.0.1/$((base + 2))") 2>/dev/null; then
      export PG_CLUSTER_PORT=$base
      break
    fi
  done
  trap 'scripts/pg-cluster.sh stop >/dev/null 2>&1 || true; rm -rf "$PG_CLUSTER_DIR"' EXIT
  scripts/pg-cluster.sh start
  VC_TEST_POSTGRES_URL=$(scripts/pg-cluster.sh url admin)
  export VC_TEST_POSTGRES_URL
elif [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL 15 is missing in CI: .ci/run should have installed it" >&2
  exit 1
else
  echo "PostgreSQL 15 not installed: its tests are skipped (apt-get install postgresql-15)"
fi

echo "== cargo test --workspace"
cargo test --workspace --no-fail-fast

echo "== loom model checks (RUSTFLAGS=--cfg loom, release, own target dir)"
# Own target dir: a different RUSTFLAGS would otherwise invalidate the normal build.
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
  cargo test --release -p vc-ledger -p vc-actors --lib -- loom

echo "== cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "all checks passed in $((SECONDS / 60))m $((SECONDS % 60))s"
