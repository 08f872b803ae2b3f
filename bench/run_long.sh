#!/usr/bin/env bash
# Long recordings through the bulk pipeline: wall time and peak memory of `audiocap caption --check` (the
# pipeline without the model) on one long stereo 44.1 kHz 16-bit file, WAV and FLAC, captioning its first 30 s
# (the default) and as 10 s segments (`--segment 10`). Give a second binary (e.g. a build of an older commit) to
# compare: the rows must be byte-identical. Medians of REPS runs, one decode thread, page cache warm.
# usage: bench/run_long.sh [MINUTES=20] [REPS=3] [AUDIOCAP=build/audiocap] [OTHER_AUDIOCAP]   (needs sox)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-20}
reps=${2:-3}
bin=${3:-build/audiocap}
other=${4:-}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), $(date -u +%F), commit $(git rev-parse --short HEAD)"
echo "file: $minutes min, 44.1 kHz stereo 16-bit (tones + noise); 1 decode thread; median of $reps"
# sox writes the file in a stream: no need for the whole signal in memory here
sox -n -r 44100 -c 2 -b 16 "$dir/long.wav" synth "$((minutes * 60))" sine 440 sine 660 whitenoise vol 0.3
sox "$dir/long.wav" "$dir/long.flac"
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run() {  # run BIN FILE OUT [ARGS...]: prints "wall_s rss_mb" of the median wall
  local b=$1 f=$2 o=$3 w=() m=()
  shift 3
  for r in $(seq "$reps"); do
    rm -rf "$o"
    /usr/bin/time -f "%e %M" -o "$dir/time" "$b" caption --check -q --decode-threads 1 "$@" -o "$o/" "$f"
    read -r wall kb < "$dir/time"
    w+=("$wall"); m+=("$((kb / 1024))")
  done
  echo "$(printf '%s\n' "${w[@]}" | median) $(printf '%s\n' "${m[@]}" | median)"
}
for fmt in wav flac; do
  for mode in first30 segment10; do
    args=()
    [ $mode = segment10 ] && args=(--segment 10)
    read -r w m <<<"$(run "$bin" "$dir/long.$fmt" "$dir/a" "${args[@]}")"
    line=$(printf '%-4s %-9s  %s: %6.2f s, %5d MB peak' "$fmt" "$mode" "$(basename "$bin")" "$w" "$m")
    if [ -n "$other" ]; then
      read -r w2 m2 <<<"$(run "$other" "$dir/long.$fmt" "$dir/b" "${args[@]}")"
      same=$(cmp -s "$dir/a/part-00000-of-00001.jsonl" "$dir/b/part-00000-of-00001.jsonl" && echo identical || echo DIFFERENT)
      line+=$(printf '   other: %6.2f s, %5d MB peak   rows %s' "$w2" "$m2" "$same")
    fi
    echo "$line"
  done
done
