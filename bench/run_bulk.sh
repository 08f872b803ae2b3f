#!/usr/bin/env bash
# Bulk-run throughput on the CPU side: files/s of `audiocap caption --check` (inputs, ids, the decode pool,
# clip planning, rows written: the whole pipeline except the model) against the decode-only ceiling
# (bench_decode: the same decode pool and nothing else), on the same 10 s files and threads, WAV and FLAC.
# Target (issue #7): the pipeline reaches >= 90 % of the ceiling. Medians of REPS runs, page cache warm.
# usage: bench/run_bulk.sh [N_FILES=400] [THREADS=nproc] [REPS=5] [RATE=32000]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-400}
threads=${2:-$(nproc)}
reps=${3:-5}
rate=${4:-32000}
cmake --build build --target bench_decode audiocap -j >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), $(date -u +%F), commit $(git rev-parse --short HEAD)"
echo "files: $n x 10 s mono 16-bit at $rate Hz; threads $threads; median of $reps"
build/bench/bench_decode --make "$dir" "$n" "$rate"
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for fmt in wav flac; do
  files=("$dir/$fmt"/*)
  dec=(); pipe=()
  for r in $(seq "$reps"); do
    dec+=("$(build/bench/bench_decode "$threads" "${files[@]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["files_per_s"])')")
    # the run's own wall time (its .done summary): from the first file to the last row, without the one-time
    # process start (~0.1-0.2 s: mapping the CUDA libraries), which a real run of many files amortises
    rm -rf "$dir/out"
    build/audiocap caption --check -q --decode-threads "$threads" -o "$dir/out/" "$dir/$fmt"
    pipe+=("$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(round(d['files'] / d['wall_s'], 1))" "$dir/out/part-00000-of-00001.jsonl.done")")
  done
  d=$(printf '%s\n' "${dec[@]}" | median)
  p=$(printf '%s\n' "${pipe[@]}" | median)
  [ "$(wc -l <"$dir/out/part-00000-of-00001.jsonl")" -eq "$n" ] && ! grep -q '"status":"error"' "$dir/out/part-00000-of-00001.jsonl"
  printf '%-4s decode-only %8.1f files/s   audiocap caption --check %8.1f files/s   ratio %5.1f %%   (per core: %.0f / %.0f)\n' \
    "$fmt" "$d" "$p" "$(python3 -c "print(100 * $p / $d)")" "$(python3 -c "print($d / $threads)")" "$(python3 -c "print($p / $threads)")"
done
