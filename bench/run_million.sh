#!/usr/bin/env bash
# A million-file run on the CPU side (issue #7): `audiocap caption --check` (inputs, ids, the decode pool, rows
# written: everything but the model) over N files in 1,000-file directories (every tenth directory name has a
# space and a non-ASCII letter; every hundredth holds a truncated WAV, an empty FLAC and a text file named .wav).
# The files are hard links to DISTINCT generated clips, so the tree costs inodes, not gigabytes.
#   1. one whole run: wall time, files/s, peak RSS, rows = inputs, bad files = error rows;
#   2. KILLS runs killed with SIGKILL at random moments, each resumed with --resume, then a last resume: every
#      input's row exactly once (none lost, none duplicated, none torn), statuses equal to run 1's;
#   3. a resume of the finished output (listing + reading back N rows, nothing to do): its wall time and RSS.
# usage: bench/run_million.sh [N=1000000] [THREADS=nproc] [KILLS=5] [SECONDS=2] [DISTINCT=200] [RATE=32000]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
threads=${2:-$(nproc)}
kills=${3:-5}
seconds=${4:-2}
distinct=${5:-200}
rate=${6:-32000}
cmake --build build --target bench_decode audiocap -j >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ac=$PWD/build/audiocap
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), $(date -u +%F), commit $(git rev-parse --short HEAD)"
echo "files: $n hard links to $distinct distinct ${seconds} s mono 16-bit WAV at $rate Hz; decode threads $threads"
build/bench/bench_decode --make "$dir/src" "$distinct" "$rate" "$seconds"
python3 - "$dir" "$n" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
src = sorted(os.path.join(root, 'src', 'wav', f) for f in os.listdir(os.path.join(root, 'src', 'wav')))
bad = 0
for k in range(n):
    d, i = divmod(k, 1000)
    dn = os.path.join(root, 'tree', f'batch {d:04d} é' if d % 10 == 0 else f'batch_{d:04d}')
    if i == 0:
        os.makedirs(dn)
        if d % 100 == 0:
            open(os.path.join(dn, 'broken.wav'), 'wb').write(b'RIFF\x24\x00\x00\x00WAVEfmt ')
            open(os.path.join(dn, 'empty.flac'), 'wb').close()
            open(os.path.join(dn, 'notes.wav'), 'w').write('not audio\n')
            bad += 3
    os.link(src[k % len(src)], os.path.join(dn, f'clip_{k:07d}.wav'))
open(os.path.join(root, 'bad'), 'w').write(str(bad))
PY
bad=$(cat "$dir/bad")
total=$((n + bad))

# run CMD...: prints "wall_s max_rss_mb" of the command (a child's peak RSS from getrusage)
run() { python3 -c '
import resource, subprocess, sys, time
t = time.monotonic(); r = subprocess.run(sys.argv[1:]).returncode; w = time.monotonic() - t
if r: sys.exit("command failed (%d): %s" % (r, " ".join(sys.argv[1:])))
print("%.2f %.0f" % (w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))' "$@"; }

cd "$dir"
read -r w1 m1 < <(run "$ac" caption --check -q --decode-threads "$threads" -o full/ tree)
# kills at random moments over the first 90 % of a whole run's time
for k in $(seq "$kills"); do
  "$ac" caption --check -q --resume --decode-threads "$threads" -o kr/ tree 2>/dev/null &
  pid=$!
  sleep "$(python3 -c "import random; print(round(random.uniform(0.5, max(1.0, 0.9 * $w1 / $kills)), 2))")"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "kill $k: $(wc -l <kr/part-00000-of-00001.jsonl 2>/dev/null || echo 0) rows so far"
done
read -r w2 m2 < <(run "$ac" caption --check -q --resume --decode-threads "$threads" -o kr/ tree)
read -r w3 m3 < <(run "$ac" caption --check -q --resume --decode-threads "$threads" -o kr/ tree)
python3 - "$total" "$bad" "$w1" "$m1" "$w2" "$w3" "$m3" <<'PY'
import json, sys
total, bad = int(sys.argv[1]), int(sys.argv[2])
w1, m1, w2, w3, m3 = map(float, sys.argv[3:])
def rows(path):
    out, torn, dup = {}, 0, 0
    for line in open(path, 'rb'):
        try: r = json.loads(line)
        except ValueError: torn += 1; continue
        dup += r['id'] in out
        out[r['id']] = r['status']
    return out, torn, dup
full, t1, d1 = rows('full/part-00000-of-00001.jsonl')
kr, t2, d2 = rows('kr/part-00000-of-00001.jsonl')
errors = sum(s == 'error' for s in full.values())
ok = (len(full) == total and t1 == d1 == 0 and errors == bad and kr == full and t2 == d2 == 0)
print(f'whole run:        {len(full)} rows ({errors} error rows for {bad} bad files) in {w1:.1f} s, '
      f'{len(full) / w1:.0f} files/s, peak RSS {m1:.0f} MB')
print(f'killed + resumed: {len(kr)} rows, {d2} duplicated, {t2} torn, statuses equal to the whole run: {kr == full}; '
      f'last resume {w2:.1f} s')
print(f'resume when done: {w3:.1f} s for {total} inputs, peak RSS {m3:.0f} MB')
print('PASS' if ok else 'FAIL')
sys.exit(0 if ok else 1)
PY
