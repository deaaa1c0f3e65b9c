#!/usr/bin/env bash
# Long seed sweep of the ring simulation (not run by CI). Prints one line per seed and, for each
# failing seed, its error and the command that reproduces it; exits non-zero if any seed failed.
#
#   scripts/sim-sweep-ring.sh [first-seed] [count] [extra args for the scenario, e.g. --f 2 --real-crypto]
#
# Seeds run in a few parallel chunks (SWEEP_JOBS, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
first=${1:-1}
count=${2:-2000}
shift $(( $# >= 2 ? 2 : $# )) || true
jobs=${SWEEP_JOBS:-2}
chunk=$(( (count + jobs - 1) / jobs ))
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pids=()
for ((j = 0; j < jobs; j++)); do
  from=$(( first + j * chunk ))
  to=$(( from + chunk - 1 ))
  last=$(( first + count - 1 ))
  (( to > last )) && to=$last
  (( from > to )) && continue
  npx tsx sim/main.ts ring --seeds "$from..$to" "$@" > "$out/$j.txt" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
cat "$out"/*.txt | grep -v '^npm warn' | sort -t' ' -k2,2n
failed=$(cat "$out"/*.txt | grep -c ' FAIL ' || true)
echo "ring sweep: $count seeds from $first, $failed failed"
[[ $failed -eq 0 && $status -eq 0 ]]
