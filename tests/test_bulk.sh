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

# dataset manifests: Clotho CSV (quoted names with commas, ISO-8859-1 text, a missing file), AudioCaps CSV (5 rows
# per clip, not adjacent; both file-naming conventions), WavCaps JSON, NeMo JSONL
ds="$tmp/ds"
mkdir -p "$ds/clotho" "$ds/audiocaps" "$ds/wavcaps"
for f in "Santa Motor.wav" "a, b.wav" "café.wav"; do cp "$data/audio/speech_16k_mono.wav" "$ds/clotho/$f"; done
printf 'file_name,caption_1,caption_2,caption_3,caption_4,caption_5\nSanta Motor.wav,"a car, driving",b,c,d,e\n"a, b.wav",x,y,z,w,v\ncaf\xe9.wav,"he said ""hi""",b,c,d,e\nmissing.wav,a,b,c,d,e\n' >"$ds/clotho/captions.csv"
"$bin" caption -q -m "$model" --manifest "$ds/clotho/captions.csv" -o "$tmp/clotho.jsonl"
expect '[ "$(wc -l <"$tmp/clotho.jsonl")" -eq 4 ] && [ "$(grep -c "\"status\":\"ok\"" "$tmp/clotho.jsonl")" -eq 3 ]' "Clotho CSV: 4 rows, 3 captioned"
expect 'grep -q "\"id\":\"café.wav\",.*\"status\":\"ok\"" "$tmp/clotho.jsonl"' "Clotho CSV in ISO-8859-1 finds café.wav"
expect 'grep -q "\"id\":\"missing.wav\".*No such file" "$tmp/clotho.jsonl"' "a listed file that is missing is an error row"
cp "$data/audio/example.flac" "$ds/audiocaps/abc_30.flac"
cp "$data/audio/speech_16k_mono.wav" "$ds/audiocaps/Ydef.wav"
printf 'audiocap_id,youtube_id,start_time,caption\n1,abc,30,a dog\n2,def,0,rain\n3,abc,30,a dog barks\n4,def,0,rain falls\n5,abc,30,dog\n' >"$ds/audiocaps/test.csv"
"$bin" caption -q -m "$model" --manifest "$ds/audiocaps/test.csv" -o "$tmp/ac.jsonl"
expect '[ "$(wc -l <"$tmp/ac.jsonl")" -eq 2 ] && grep -q "abc_30.flac" "$tmp/ac.jsonl" && grep -q "Ydef.wav" "$tmp/ac.jsonl" && ! grep -q "\"status\":\"error" "$tmp/ac.jsonl"' "AudioCaps CSV: one row per clip, both naming conventions"
cp "$data/audio/example.flac" "$ds/wavcaps/123.flac"
cp "$data/audio/example.flac" "$ds/wavcaps/Y-xyz.flac"
printf '{"num_captions_per_audio": 1, "data": [{"id": "123", "caption": "x"}, {"id": "Y-xyz.wav", "caption": "y"}]}' >"$ds/wavcaps/sb_final.json"
"$bin" caption -q -m "$model" --manifest "$ds/wavcaps/sb_final.json" -o "$tmp/wc.jsonl"
expect '[ "$(grep -c "\"status\":\"ok\"" "$tmp/wc.jsonl")" -eq 2 ]' "WavCaps JSON: <id>.flac, .wav ids mapped to .flac"
printf '{"audio_filepath": "%s", "duration": 3.0}\n{"audio_filepath": "%s"}\n' "$data/audio/example.flac" "$ds/clotho/a, b.wav" >"$ds/nemo.jsonl"
"$bin" caption -q -m "$model" --manifest "$ds/nemo.jsonl" -o "$tmp/nemo.jsonl"
expect '[ "$(grep -c "\"status\":\"ok\"" "$tmp/nemo.jsonl")" -eq 2 ]' "NeMo JSONL manifest"
printf 'foo,bar\n1,2\n' >"$ds/unknown.csv"
"$bin" caption -q -m "$model" --manifest "$ds/unknown.csv" >/dev/null 2>"$tmp/err_m"; rc=$?
expect '[ $rc -eq 1 ] && grep -q "unknown CSV manifest" "$tmp/err_m"' "an unknown manifest is refused with a hint"

# shards: union = whole set, no overlap; SLURM variables give the same split
for i in 0 1 2; do "$bin" caption -q -m "$model" --shard $i/3 -o "$tmp/part$i.jsonl" "$tmp/tree"; done
cat "$tmp"/part*.jsonl >"$tmp/union.jsonl"
expect '[ "$(ids "$tmp/union.jsonl")" = "$(ids "$tmp/all.jsonl")" ]' "union of 3 shards = the whole set, no overlap"
SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=3 "$bin" caption -q -m "$model" -o "$tmp/slurm1.jsonl" "$tmp/tree"
expect 'cmp -s "$tmp/slurm1.jsonl" "$tmp/part1.jsonl"' "SLURM_ARRAY_TASK_ID/COUNT select the same shard"
"$bin" caption -q -m "$model" --shard 3/3 "$tmp/tree" >/dev/null 2>&1; expect '[ $? -eq 2 ]' "bad --shard is a usage error"

# kill -9 at random moments, resume, repeat: exactly one whole row per input in the end. The set is sized so that a
# clean run takes >= 2 s on this machine, so the kills land mid-run however fast it is (tests/kill_resume.sh)
. "$(dirname "$0")/kill_resume.sh"
mkdir -p "$tmp/many"
for i in $(seq 1 300); do ln -s "$data/audio/example.flac" "$tmp/many/c$i.flac"; done
many=("$bin" caption -q -m "$model" --batch-size 1)  # an array, not a function: kill -9 must reach audiocap itself
size_set "$tmp/many" "$data/audio/example.flac" flac 6000 "${many[@]}" -o "$tmp/clean.jsonl" "$tmp/many"
n_many=$n_set
out="$tmp/resumed.jsonl"
kill_resume "$T" "$out" "${many[@]}" --resume -o "$out" "$tmp/many"
echo "$(rows "$out") of $n_many rows before the last resume"
"${many[@]}" --resume -o "$out" "$tmp/many"
expect '[ $kills_mid -ge 3 ]' "the run was really killed mid-output ($kills_mid of $kills kills)"
expect '[ "$(wc -l <"$out")" -eq $n_many ]' "$n_many rows after $kills kills and resumes ($(wc -l <"$out"))"
expect '[ "$(ids "$out" | uniq | wc -l)" -eq $n_many ] && [ "$(ids "$out" | uniq -d | wc -l)" -eq 0 ]' "no id lost or duplicated"
expect '[ "$(ids "$out")" = "$(ids "$tmp/clean.jsonl")" ]' "the ids of one clean run"
expect '[ "$(tail -c 1 "$out" | od -An -c | tr -d " ")" = "\\n" ]' "no torn row at the end"
python3 -c "import json,sys; [json.loads(l) for l in open(sys.argv[1])]" "$out"
expect '[ $? -eq 0 ]' "every row parses as JSON"
"$bin" caption -q -m "$model" --resume --format csv -o "$tmp/x.csv" "$tmp/many" 2>/dev/null; expect '[ $? -eq 2 ]' "--resume with CSV is refused"

echo "test_bulk: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
