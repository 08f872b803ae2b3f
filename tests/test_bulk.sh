#!/usr/bin/env bash
# Bulk runs with `audiocap caption`: a directory tree salted with bad files, --list (and stdin), --shard (union of
# the shards = the whole set, no overlap; SLURM variables as defaults), and --resume after killing a real run
# with SIGKILL again and again: every input ends with exactly one complete row, none lost, none duplicated,
# none torn.
# usage: test_bulk.sh AUDIOCAP MODEL DATA_DIR
set -u
bin=$1
model=$2
data=$(cd "$3" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
expect() { if eval "$1"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $2" >&2; fi; }
ids() { python3 -c "import json,sys; [print(json.loads(l)['id']) for l in open(sys.argv[1])]" "$1" | sort; }

# a tree: 60 good clips in nested folders (names with spaces, commas, non-ASCII), plus bad files and non-audio
mkdir -p "$tmp/tree/a/b" "$tmp/tree/c d" "$tmp/tree/été"
for i in $(seq -w 1 20); do
  cp "$data/audio/speech_16k_mono.wav" "$tmp/tree/a/clip $i.wav"
  cp "$data/audio/clipped_8k_mono.wav" "$tmp/tree/a/b/x,$i.wav"
  cp "$data/audio/chirp_44k1_stereo_s24.flac" "$tmp/tree/été/ü$i.FLAC"
done
printf 'garbage' >"$tmp/tree/c d/corrupt.wav"
: >"$tmp/tree/c d/empty.flac"
printf 'notes' >"$tmp/tree/c d/readme.txt"      # not an audio extension: not an input
n_expected=62

"$bin" caption -q -m "$model" -o "$tmp/all.jsonl" "$tmp/tree"
expect '[ "$(wc -l <"$tmp/all.jsonl")" -eq $n_expected ]' "a directory is every audio file below it ($(wc -l <"$tmp/all.jsonl") rows)"
expect '[ "$(grep -c "\"status\":\"error\"" "$tmp/all.jsonl")" -eq 2 ]' "the two bad files are error rows"
expect '! grep -q readme "$tmp/all.jsonl"' "non-audio files are not inputs"
expect '[ "$(ids "$tmp/all.jsonl" | uniq -d | wc -l)" -eq 0 ]' "ids are unique"

# --list, from a file and from stdin
find "$tmp/tree" -name '*.wav' | sort >"$tmp/list.txt"
"$bin" caption -q -m "$model" --list "$tmp/list.txt" -o "$tmp/list.jsonl"
expect '[ "$(wc -l <"$tmp/list.jsonl")" -eq "$(wc -l <"$tmp/list.txt")" ]' "--list FILE"
"$bin" caption -q -m "$model" --list - -o "$tmp/stdin.jsonl" <"$tmp/list.txt"
expect 'cmp -s "$tmp/list.jsonl" "$tmp/stdin.jsonl"' "--list - reads stdin"

# shards: union = whole set, no overlap; SLURM variables give the same split
for i in 0 1 2; do "$bin" caption -q -m "$model" --shard $i/3 -o "$tmp/part$i.jsonl" "$tmp/tree"; done
cat "$tmp"/part*.jsonl >"$tmp/union.jsonl"
expect '[ "$(ids "$tmp/union.jsonl")" = "$(ids "$tmp/all.jsonl")" ]' "union of 3 shards = the whole set, no overlap"
SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=3 "$bin" caption -q -m "$model" -o "$tmp/slurm1.jsonl" "$tmp/tree"
expect 'cmp -s "$tmp/slurm1.jsonl" "$tmp/part1.jsonl"' "SLURM_ARRAY_TASK_ID/COUNT select the same shard"
"$bin" caption -q -m "$model" --shard 3/3 "$tmp/tree" >/dev/null 2>&1; expect '[ $? -eq 2 ]' "bad --shard is a usage error"

# kill -9 at random moments, resume, repeat: exactly one whole row per input in the end
mkdir -p "$tmp/many"
for i in $(seq -w 1 300); do ln -s "$data/audio/example.flac" "$tmp/many/c$i.flac"; done
out="$tmp/resumed.jsonl"
kills=0
for attempt in $(seq 1 30); do  # until 5 kills landed mid-run (or 30 tries)
  "$bin" caption -q -m "$model" --batch-size 1 --resume -o "$out" "$tmp/many" 2>/dev/null &
  pid=$!
  sleep "0.$((RANDOM % 5 + 1))"
  if kill -9 $pid 2>/dev/null; then kills=$((kills + 1)); fi
  wait $pid 2>/dev/null
  [ $kills -ge 5 ] && break
done
echo "killed $kills times; $(wc -l <"$out" 2>/dev/null || echo 0) rows before the last resume"
"$bin" caption -q -m "$model" --batch-size 1 --resume -o "$out" "$tmp/many"
expect '[ $kills -ge 3 ]' "the run was really killed ($kills kills)"
expect '[ "$(wc -l <"$out")" -eq 300 ]' "300 rows after $kills kills and resumes ($(wc -l <"$out"))"
expect '[ "$(ids "$out" | uniq | wc -l)" -eq 300 ] && [ "$(ids "$out" | uniq -d | wc -l)" -eq 0 ]' "no id lost or duplicated"
expect '[ "$(tail -c 1 "$out" | od -An -c | tr -d " ")" = "\\n" ]' "no torn row at the end"
python3 -c "import json,sys; [json.loads(l) for l in open(sys.argv[1])]" "$out"
expect '[ $? -eq 0 ]' "every row parses as JSON"
"$bin" caption -q -m "$model" --resume --format csv -o "$tmp/x.csv" "$tmp/many" 2>/dev/null; expect '[ $? -eq 2 ]' "--resume with CSV is refused"

echo "test_bulk: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
