#!/usr/bin/env bash
# The audiocap CLI as a user runs it: help texts, exit codes, one JSON row per input in input order (errors as
# rows, the run goes on), ids, and --dump-dir stage files with the right .npy shapes.
# usage: test_cli.sh AUDIOCAP DATA_DIR
set -u
bin=$1
data=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
expect() { if eval "$1"; then ok; else bad "$2"; fi; }

# help and usage errors
"$bin" --help >"$tmp/h" 2>&1; expect '[ $? -eq 0 ] && grep -q features "$tmp/h"' "audiocap --help"
"$bin" features --help >"$tmp/h" 2>&1; rc=$?
expect '[ $rc -eq 0 ] && grep -q -- "--dump-dir DIR" "$tmp/h" && grep -q "\[off\]" "$tmp/h" && grep -q "\[stdout\]" "$tmp/h"' \
  "features --help shows every option with its default"
"$bin" features >/dev/null 2>&1; expect '[ $? -eq 2 ]' "no input is a usage error (2)"
"$bin" features --bogus x.wav >/dev/null 2>&1; expect '[ $? -eq 2 ]' "unknown option is a usage error (2)"
"$bin" features --threads zero x.wav >/dev/null 2>&1; expect '[ $? -eq 2 ]' "bad --threads is a usage error (2)"
"$bin" frobnicate >/dev/null 2>&1; expect '[ $? -eq 2 ]' "unknown command is a usage error (2)"
"$bin" version >"$tmp/v" 2>&1; expect '[ $? -eq 0 ] && grep -q libsndfile "$tmp/v"' "version"
"$bin" devices >"$tmp/d" 2>&1; expect '[ $? -eq 0 ]' "devices (no GPU is not an error)"

# a run with good, too-short, broken and missing inputs, two sharing a file name
mkdir -p "$tmp/a" "$tmp/b" "$tmp/dump"
cp "$data/audio/speech_16k_mono.wav" "$tmp/a/same name.wav"
cp "$data/audio/clipped_8k_mono.wav" "$tmp/b/same name.wav"
printf 'not audio' >"$tmp/broken, file.wav"
"$bin" features --threads 2 --dump-dir "$tmp/dump" -o "$tmp/out.jsonl" \
  "$data/audio/example.flac" "$data/audio/tiny_32k_mono.wav" "$tmp/broken, file.wav" "$tmp/missing.wav" \
  "$tmp/a/same name.wav" "$tmp/b/same name.wav" 2>"$tmp/err"
rc=$?
expect '[ $rc -eq 0 ]' "bad inputs do not fail the run (rc=$rc)"
expect '[ "$(wc -l <"$tmp/out.jsonl")" -eq 6 ]' "one row per input"
row() { sed -n "${1}p" "$tmp/out.jsonl"; }
expect 'row 1 | grep -q "\"id\":\"example.flac\"" && row 1 | grep -q "\"status\":\"ok\"" && row 1 | grep -q "\"frames\":301"' \
  "example.flac row: ok, 301 frames"
expect 'row 1 | grep -q "\"samples_32k\":96000" && row 1 | grep -q "\"sample_rate\":44100"' "example.flac row: rates and lengths"
expect 'row 2 | grep -q "\"status\":\"error\"" && row 2 | grep -q "too short"' "too-short input is an error row"
expect 'row 3 | grep -q "\"status\":\"error\"" && row 3 | grep -q "not a decodable audio file" && row 3 | grep -q "broken, file.wav"' \
  "broken input: error row naming the file"
expect 'row 4 | grep -q "\"status\":\"error\"" && row 4 | grep -q "No such file"' "missing input: error row"
expect 'row 5 | grep -q "\"id\":\"$tmp/a/same name.wav\""' "ambiguous file names get the path as id"
expect 'grep -q "3 ok, 3 failed" "$tmp/err"' "summary on stderr"

# dump files: .npy with the expected shapes
hdr() { head -c 128 "$1" | tr -d '\0' | grep -ao "'shape': ([0-9, ]*)"; }
expect '[ "$(hdr "$tmp/dump/example.flac/audio_32k.npy")" = "'"'shape': (96000,)"'" ]' "audio_32k.npy shape"
expect '[ "$(hdr "$tmp/dump/example.flac/logmel.npy")" = "'"'shape': (301, 224)"'" ]' "logmel.npy shape"
expect '[ "$(stat -c %s "$tmp/dump/example.flac/logmel.npy")" -eq $((128 + 301 * 224 * 4)) ]' "logmel.npy size"
expect '[ -f "$tmp/dump/${tmp//\//_}_a_same name.wav/logmel.npy" ]' "ambiguous id dump directory"

# unwritable output is systemic: exit 1
"$bin" features -o /nonexistent/dir/out.jsonl "$data/audio/example.flac" >/dev/null 2>&1
expect '[ $? -eq 1 ]' "unwritable output exits 1"

echo "test_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
