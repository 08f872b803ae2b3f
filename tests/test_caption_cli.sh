#!/usr/bin/env bash
# `audiocap caption` as a user runs it: JSONL rows in input order with error rows, --nbest, the DCASE CSV with
# RFC 4180 quoting, >30 s inputs truncated and said so, --dump-dir stages, option errors and exit codes.
# usage: test_caption_cli.sh AUDIOCAP MODEL DATA_DIR
set -u
bin=$1
model=$2
data=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
expect() { if eval "$1"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $2" >&2; fi; }

cp "$data/audio/example.flac" "$tmp/a, \"quoted\" name.flac"
printf 'not audio' >"$tmp/broken.wav"
# a 31 s clip (python3's stdlib wave writer: no extra tools needed)
python3 -c "
import wave, random
w = wave.open('$tmp/long.wav', 'wb'); w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
random.seed(1); w.writeframes(b''.join(random.randint(-3000, 3000).to_bytes(2, 'little', signed=True) for _ in range(31 * 8000))); w.close()"

"$bin" caption --model "$model" --nbest --batch-size 2 -o "$tmp/out.jsonl" \
  "$data/audio/example.flac" "$tmp/broken.wav" "$data/audio/tiny_32k_mono.wav" "$tmp/long.wav" "$tmp/missing.wav" 2>"$tmp/err"
rc=$?
expect '[ $rc -eq 0 ]' "bad inputs do not fail the run (rc=$rc)"
expect '[ "$(wc -l <"$tmp/out.jsonl")" -eq 5 ]' "one row per input"
row() { sed -n "${1}p" "$tmp/out.jsonl"; }
expect 'row 1 | grep -q "\"id\":\"example.flac\"" && row 1 | grep -q "\"status\":\"ok\"" && row 1 | grep -q "\"caption\":\"[a-z]"' "first row captioned"
expect 'row 1 | grep -q "\"tokens\":\[" && row 1 | grep -q "\"score\":-" && row 1 | grep -q "\"beams\":\[{" && row 1 | grep -q "\"best\":"' "--nbest row fields"
expect 'row 2 | grep -q "\"status\":\"error\"" && row 2 | grep -q "not a decodable audio file"' "broken file: error row"
sha=$(sha256sum "$model" | cut -d" " -f1)
expect 'row 1 | grep -q "\"model_sha256\":\"$sha\"" && row 2 | grep -q "\"model_sha256\":\"$sha\""' "every row names the model's SHA-256"
expect 'row 1 | grep -q "\"beam_size\":3,\"min_pred_size\":3,\"max_pred_size\":20,\"model\":\"fixture-tiny\"" && row 1 | grep -q "\"engine\":\"audiocap "' "decoding parameters, model and engine in the row"
expect 'row 3 | grep -q "too short for the encoder"' "too-short clip: error row"
expect 'row 4 | grep -q "\"status\":\"ok\"" && row 4 | grep -q "\"truncated_s\":1" && grep -q "captioned on its first 30 s" "$tmp/err"' "31 s clip truncated and said so"
expect 'row 5 | grep -q "No such file"' "missing file: error row"
expect 'grep -q "2 ok, 3 failed" "$tmp/err"' "summary"

# same clips, batch size 1 vs 5: identical rows (batch invariance through the CLI)
"$bin" caption -m "$model" --batch-size 1 -q "$data/audio/example.flac" "$data/audio/speech_16k_mono.wav" "$tmp/long.wav" >"$tmp/b1"
"$bin" caption -m "$model" --batch-size 5 -q "$data/audio/example.flac" "$data/audio/speech_16k_mono.wav" "$tmp/long.wav" >"$tmp/b5"
expect 'cmp -s "$tmp/b1" "$tmp/b5"' "batch size does not change any row"

# DCASE CSV with quoting; failures only on stderr
"$bin" caption -m "$model" --format csv -o "$tmp/sub.csv" "$tmp/a, \"quoted\" name.flac" "$tmp/broken.wav" 2>"$tmp/err2"
expect '[ "$(head -1 "$tmp/sub.csv")" = "file_name,caption_predicted" ]' "CSV header"
expect 'sed -n 2p "$tmp/sub.csv" | grep -q "^\"a, \"\"quoted\"\" name.flac\",[a-z]"' "RFC 4180 quoting of the file name"
expect '[ "$(wc -l <"$tmp/sub.csv")" -eq 2 ] && grep -q broken.wav "$tmp/err2"' "failed input reported on stderr, not in the CSV"
python3 -c "import csv,sys; r=list(csv.reader(open('$tmp/sub.csv'))); sys.exit(0 if r[1][0]=='a, \"quoted\" name.flac' and len(r[1])==2 else 1)"
expect '[ $? -eq 0 ]' "Python's csv module reads the submission back"

# --dump-dir stages
"$bin" caption -m "$model" -q --dump-dir "$tmp/dump" "$data/audio/example.flac" >/dev/null
for s in audio_32k logmel bn0 stem stage0 stage1 stage2 stage3 frame_embs projection; do
  expect '[ -s "$tmp/dump/example.flac/$s.npy" ]' "dump stage $s"
done

# usage and systemic errors
"$bin" caption "$data/audio/example.flac" >/dev/null 2>&1; expect '[ $? -eq 2 ]' "missing --model is a usage error"
"$bin" caption -m "$model" --beam 0 x.wav >/dev/null 2>&1; expect '[ $? -eq 2 ]' "--beam 0 is a usage error"
"$bin" caption -m "$model" --task nope x.wav >/dev/null 2>&1; expect '[ $? -eq 2 ]' "unknown task is a usage error"
"$bin" caption -m "$tmp/broken.wav" x.wav >/dev/null 2>&1; expect '[ $? -eq 1 ]' "unreadable model exits 1"
"$bin" caption --help >"$tmp/h"; expect 'grep -q -- "--batch-size N" "$tmp/h" && grep -q "\[cpu: 8, cuda: 256\]" "$tmp/h"' "--help lists options with defaults"

echo "test_caption_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
