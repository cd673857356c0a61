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
  trap 'scripts/pg-cluster.sh stop >/dev/null 2>&1 || true; rm -rf "$PG_CLUSTER_DIR"' EXIT
  # Three consecutive loopback ports nobody listens on; a start that fails
  # shows its nodes' logs and is tried once more on the next free ports
  # (a port can be taken between the check and the start).
  started=false
  next=55432
  for attempt in 1 2; do
    for base in $(seq "$next" 10 55932); do
      if ! (exec 3<>"/dev/tcp/127.0.0.1/$base") 2>/dev/null &&
        ! (exec 3<>"/dev/tcp/127.0.0.1/$((base + 1))") 2>/dev/null &&
        ! (exec 3<>"/dev/tcp/127.0.0.1/$((base + 2))") 2>/dev/null; then
        export PG_CLUSTER_PORT=$base
        break
      fi
    done
    if scripts/pg-cluster.sh start; then
      started=true
      break
    fi
    echo "the PostgreSQL cluster did not start (attempt $attempt, port $PG_CLUSTER_PORT); its logs:" >&2
    tail -n 15 "$PG_CLUSTER_DIR"/*.log >&2 || true
    scripts/pg-cluster.sh stop >/dev/null 2>&1 || true
    find "$PG_CLUSTER_DIR" -mindepth 1 -delete
    next=$((PG_CLUSTER_PORT + 10))
  done
  if [ "$started" != true ]; then
    exit 1
  fi
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
