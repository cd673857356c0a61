#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each, one after the other:
#   fuzz/run.sh SECONDS [TARGET...]
# Seeds (fuzz/seeds/<target>/, committed) are copied into the working corpus
# (fuzz/corpus/<target>/, not committed) first. Crashes land in
# fuzz/artifacts/<target>/; each one found becomes a file under
# fuzz/regressions/<target>/, replayed by tests/it/fuzz_regressions.rs.
# Only the stable toolchain is installed: RUSTC_BOOTSTRAP=1 lets it take
# the nightly-only flags cargo-fuzz passes (sanitizer, coverage).
set -euo pipefail

secs="${1:?usage: fuzz/run.sh SECONDS [TARGET...]}"
shift
cd "$(dirname "$0")"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

# Debug assertions and overflow checks stay on (cargo-fuzz's default).
cargo fuzz build

mkdir -p logs
# The file targets' scratch files (one directory per fuzzing process).
scratch_base=/dev/shm
[ -d "$scratch_base" ] || scratch_base="${TMPDIR:-/tmp}"
VC_FUZZ_SCRATCH="$(mktemp -d "$scratch_base/vc-fuzz.XXXXXX")"
export VC_FUZZ_SCRATCH
trap 'rm -rf "$VC_FUZZ_SCRATCH"' EXIT
failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    if [ -d "seeds/$t" ]; then
        cp -n "seeds/$t"/* "corpus/$t/" 2>/dev/null || true
    fi
    echo "== $t: ${secs}s"
    # -timeout: an input that takes 30 s is a denial of service, report it.
    # -rss_limit_mb: the same for memory.
    if cargo fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 -max_len=16384 \
        -print_final_stats=1 >"logs/$t.log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$t")
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || echo "?")
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "logs/$t.log" | tail -1 || echo "cov: ?")
    corpus=$(find "corpus/$t" -type f | wc -l)
    echo "   $status: $runs runs, $rate exec/s, $cov, corpus $corpus (log fuzz/logs/$t.log)"
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "crashes in: ${failed[*]} (see fuzz/artifacts/ and fuzz/logs/)"
    exit 1
fi
