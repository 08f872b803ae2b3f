#!/usr/bin/env bash
# Side-by-side CPU captioning benchmark: audiocap vs the upstream PyTorch CoNeTTE on the same clips, same threads.
# Model: the full-size random-weight CoNeTTE of tools/make_fixtures.py --full (real architecture: ConvNeXt-Tiny
# encoder, 6-layer d=256 decoder; beam 3, max 20 tokens), converted with tools/convert.py.
# Clips: N seeded 10 s 44.1 kHz stereo 16-bit WAVs (resampled to 32 kHz by both engines).
# usage: bench/run_caption.sh [N_CLIPS=16] [THREADS=nproc] [BATCH_SIZES=1,8] [PYTHON=refenv/bin/python] [REPEATS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-16}
threads=${2:-$(nproc)}
batches=${3:-1,8}
py=${4:-refenv/bin/python}
repeats=${5:-3}
fix=tests/data/fixtures/full
[ -f "$fix/hf_bin/pytorch_model.bin" ] || { echo "no $fix: run $py tools/make_fixtures.py --full first" >&2; exit 1; }
cmake --build build --target audiocap -j >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 tools/convert.py --hf "$fix/hf_bin" -o "$dir/model.safetensors" 2>/dev/null
"$py" - "$dir" "$n" <<'PY'
import sys, numpy as np, soundfile as sf
d, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(11)
t = np.arange(441000) / 44100
for i in range(n):
    x = 0.1 * rng.standard_normal((441000, 2)) + 0.3 * np.sin(2 * np.pi * (200 + 37 * i) * t)[:, None]
    sf.write(f"{d}/clip_{i:03d}.wav", np.clip(x, -1, 1), 44100, subtype="PCM_16")
PY
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), $(build/audiocap version | sed -n 's/^OpenBLAS: //p')"
echo "date $(date -u +%F), commit $(git rev-parse --short HEAD), $n clips of 10 s, $threads threads"
peak_rss() {  # max resident set of a command, in MB
  "$py" -c "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); \
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)" "$@"
}
# Each configuration runs REPEATS times, interleaved with the others and with PyTorch's runs, so that a busy
# spell on this shared machine hits them alike; the table takes each one's median.
# audiocap: the default (--workers 0: single-threaded workers when there are enough batches) and one worker
# running every op on all threads (--workers 1). clips_per_s counts the whole process (start, model load and
# hash, decoding, captioning, writing); steady_clips_per_s is the run's own figure from its .done summary (from
# the model being loaded to the last row: decoding and resampling included), comparable with PyTorch's, which
# excludes building the model and a warm-up call.
results=$dir/results.csv
for rep in $(seq "$repeats"); do
  for bs in ${batches//,/ }; do
    for w in 0 1; do
      t0=$(date +%s.%N)
      rm -rf "$dir/out"
      rss=$(peak_rss build/audiocap caption -q -m "$dir/model.safetensors" --threads "$threads" --workers "$w" \
            --batch-size "$bs" -o "$dir/out/" "$dir"/clip_*.wav)
      t1=$(date +%s.%N)
      steady=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['clips_per_s'])" "$dir"/out/*.done)
      label=$([ $w = 0 ] && echo "audiocap" || echo "audiocap-1-worker")
      echo "CSV,$label,$threads,$bs,$n,$(echo "$t1 - $t0" | bc),$(echo "scale=3; $n / ($t1 - $t0)" | bc),$rss,$steady" | tee -a "$results"
    done
  done
  # PyTorch: excludes building the model and one warm-up call (its own process per repeat)
  "$py" bench/caption_ref.py "$threads" "$batches" "$dir"/clip_*.wav 2>/dev/null | grep '^CSV' | tee -a "$results"
done
echo "medians of $repeats: engine, threads, batch, clips/s (process), steady clips/s, peak RSS MB, each run's steady"
python3 - "$results" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.strip().split(",")
    steady = float(f[8]) if len(f) > 8 and f[8] else float(f[6])  # PyTorch's own timing excludes its start
    runs[(f[1], f[2], f[3])].append((float(f[6]), steady, f[7]))
for (eng, th, bs), v in runs.items():
    print(f"MEDIAN,{eng},{th},{bs},{statistics.median(x for x, _, _ in v):.3f},"
          f"{statistics.median(y for _, y, _ in v):.3f},{max((r for _, _, r in v), default='')},"
          f"{' '.join(f'{y:.2f}' for _, y, _ in v)}")
# The ratio of the two engines' steady figures repeat by repeat (the runs of one repeat are interleaved, so a busy
# spell hits both), each engine at the batch size whose median is best.
def best(eng):
    cands = [(statistics.median(y for _, y, _ in v), bs) for (e, th, bs), v in runs.items() if e == eng]
    return max(cands)[1] if cands else None
ba, bp = best("audiocap"), best("pytorch")
if ba and bp:
    th = next(th for (e, th, bs) in runs if e == "audiocap")
    r = [a[1] / p[1] for a, p in zip(runs[("audiocap", th, ba)], runs[("pytorch", th, bp)])]
    print(f"RATIO,audiocap b{ba} / pytorch b{bp},per repeat {' '.join(f'{x:.2f}' for x in r)},"
          f"median {statistics.median(r):.2f}x,{sum(x >= 2 for x in r)} of {len(r)} >= 2x")
PY
