#!/usr/bin/env bash
# The full kill -9 soak: the issuer SIGKILLed KILLS times (50 by default) at
# random moments during payments, against the real binary over loopback
# (tests/it/kill9_soak.rs; CI runs the same test with 10 kills).
#
#   scripts/soak.sh [KILLS]          e.g. scripts/soak.sh 50
#   VC_SOAK_SEED=N scripts/soak.sh   replays a run's kill moments
set -euo pipefail
cd "$(dirname "$0")/.."
export VC_SOAK_KILLS="${1:-50}"
exec cargo test --test it kill9_soak -- --nocapture
