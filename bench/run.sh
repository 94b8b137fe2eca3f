#!/usr/bin/env bash
# Runs the side-by-side benchmarks and writes BENCHMARKS.md (and the raw
# go test output, BENCHMARKS.txt, for benchstat).
#
#   bash bench/run.sh            # -count=5
#   bash bench/run.sh 3          # -count=3
#   COUNT=3 BENCH='Breaker|Limiter' BENCHTIME=500ms bash bench/run.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

count="${1:-${COUNT:-5}}"
bench="${BENCH:-.}"
benchtime="${BENCHTIME:-1s}"
case "$count" in
  '' | *[!0-9]* | 0) echo "run.sh: count must be a positive integer, got '$count'" >&2; exit 2 ;;
esac

raw=BENCHMARKS.txt
cmd=(go test -run='^$' -bench="$bench" -benchmem -benchtime="$benchtime" -count="$count" .)
cmd_str="cd bench && go test -run='^\$' -bench='$bench' -benchmem -benchtime=$benchtime -count=$count ."

echo "run.sh: $cmd_str" >&2
"${cmd[@]}" | tee "$raw.tmp"
mv "$raw.tmp" "$raw"

cpu="$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)"
machine="$(uname -m), ${cpu:-unknown CPU}, $(nproc) CPUs (nproc)"

go run ./cmd/report -in "$raw" -out BENCHMARKS.md \
  -command "$cmd_str" -machine "$machine" -go "$(go version)"
echo "run.sh: wrote bench/BENCHMARKS.md and bench/$raw" >&2
