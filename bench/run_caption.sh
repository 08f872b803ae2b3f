#!/usr/bin/env bash
# Side-by-side CPU captioning benchmark: audiocap vs the upstream PyTorch CoNeTTE on the same clips, same threads.
# Model: the full-size random-weight CoNeTTE of tools/make_fixtures.py --full (real architecture: ConvNeXt-Tiny
# encoder, 6-layer d=256 decoder; beam 3, max 20 tokens), converted with tools/convert.py.
# Clips: N seeded 10 s 44.1 kHz stereo 16-bit WAVs (resampled to 32 kHz by both engines).
# usage: bench/run_caption.sh [N_CLIPS=16] [THREADS=nproc] [BATCH_SIZES=1,8] [PYTHON=refenv/bin/python]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-16}
threads=${2:-$(nproc)}
batches=${3:-1,8}
py=${4:-refenv/bin/python}
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
for bs in ${batches//,/ }; do
  for retune in 0 1; do
    t0=$(date +%s.%N)
    rss=$(AC_NO_BLAS_RETUNE=$([ $retune = 1 ] && echo 0 || echo 1) peak_rss build/audiocap caption -q -m "$dir/model.safetensors" \
          --threads "$threads" --batch-size "$bs" "$dir"/clip_*.wav)
    t1=$(date +%s.%N)
    label=$([ $retune = 1 ] && echo "audiocap" || echo "audiocap-generic-blas")
    echo "CSV,$label,$threads,$bs,$n,$(echo "$t1 - $t0" | bc),$(echo "scale=3; $n / ($t1 - $t0)" | bc),$rss"
  done
done
# one single-threaded worker per core (--device cpu,cpu,...): clips encoded concurrently rather than each GEMM
# split across the cores
workers=$(printf 'cpu,%.0s' $(seq "$threads")); workers=${workers%,}
for bs in ${batches//,/ }; do
  t0=$(date +%s.%N)
  rss=$(peak_rss build/audiocap caption -q -m "$dir/model.safetensors" --threads 1 --device "$workers" --batch-size "$bs" "$dir"/clip_*.wav)
  t1=$(date +%s.%N)
  echo "CSV,audiocap-workers,$threads,$bs,$n,$(echo "$t1 - $t0" | bc),$(echo "scale=3; $n / ($t1 - $t0)" | bc),$rss"
done
"$py" bench/caption_ref.py "$threads" "$batches" "$dir"/clip_*.wav 2>/dev/null | grep '^CSV'
