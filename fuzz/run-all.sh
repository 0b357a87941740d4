#!/usr/bin/env bash
# Run every fuzz target in turn for N minutes each (default 10), one at a time:
#   fuzz/run-all.sh N
# Each target reads and grows fuzz/corpus/<target> (seeded from fuzz/seeds/<target>), writes
# crashes to fuzz/artifacts/<target>/, and logs to fuzz/logs/<target>.log, whose last lines
# give the executions (stat::number_of_executed_units). Needs nightly and cargo-fuzz.
set -euo pipefail

minutes="${1:-10}"
cd "$(dirname "$0")"
mkdir -p logs
# One build of every target first, on one job: the machine is shared.
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}" cargo +nightly fuzz build
status=0
for target in $(cargo +nightly fuzz list); do
    mkdir -p "corpus/$target" "seeds/$target"
    echo "== $target: $minutes min"
    if ! cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time=$((minutes * 60)) -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        >"logs/$target.log" 2>&1; then
        echo "   $target FAILED: see fuzz/logs/$target.log and fuzz/artifacts/$target/"
        status=1
    fi
    grep -E 'stat::number_of_executed_units|^Done ' "logs/$target.log" | tail -2 | sed 's/^/   /'
done
exit "$status"
