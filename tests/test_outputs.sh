#!/usr/bin/env bash
# `audiocap caption` outputs for archives and long recordings: --segment/--hop rows (start_s, end_s, a timeline
# that covers the file), SRT and WebVTT, per-file --output-dir files, the WavCaps JSON export, segment CSV,
# part-0000I-of-0000N outputs with completion markers, decode threads and out-of-memory halving that change no
# row, progress lines, and SIGKILL + --resume in segment mode (every segment row exactly once).
# usage: test_outputs.sh AUDIOCAP MODEL DATA_DIR
set -u
bin=$1
model=$2
data=$(cd "$3" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
expect() { if eval "$1"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $2" >&2; fi; }
py() { python3 -c "$@"; }

# a 90.5 s "field recording" at 32 kHz (the model rate: a segment's samples are exactly those of the same
# stretch cut out on its own) and a 12 s one; python3's stdlib wave writer: no extra tools
py "
import wave, random, math, array
for name, secs in (('field.wav', 90.5), ('short.wav', 12.0)):
    random.seed(len(name)); n = int(secs * 32000)
    a = array.array('h', (int(3000 * math.sin(i * (0.01 + 0.02 * (i // 320000)))) + random.randint(-800, 800) for i in range(n)))
    w = wave.open('$tmp/' + name, 'wb'); w.setnchannels(1); w.setsampwidth(2); w.setframerate(32000)
    w.writeframes(a.tobytes()); w.close()
w = wave.open('$tmp/field.wav'); w.setpos(20 * 32000); fr = w.readframes(10 * 32000); w.close()
o = wave.open('$tmp/cut.wav', 'wb'); o.setnchannels(1); o.setsampwidth(2); o.setframerate(32000); o.writeframes(fr); o.close()
w = wave.open('$tmp/field.wav'); fr = w.readframes(int(30.5 * 32000)); w.close()
o = wave.open('$tmp/mid.wav', 'wb'); o.setnchannels(1); o.setsampwidth(2); o.setframerate(32000); o.writeframes(fr); o.close()"

# --segment 10: 9 windows, the last one stretched over the 0.5 s tail; a timeline without gaps
"$bin" caption -q -m "$model" --segment 10 -o "$tmp/seg.jsonl" "$tmp/field.wav"
expect '[ "$(wc -l <"$tmp/seg.jsonl")" -eq 9 ]' "90.5 s in 10 s segments: 9 rows ($(wc -l <"$tmp/seg.jsonl"))"
# one long file: the default CPU workers count its windows from the header (two batches of 5 here: two workers)
"$bin" caption -q -m "$model" --segment 10 --batch-size 5 --threads 2 -o "$tmp/segw0/" "$tmp/field.wav"
"$bin" caption -q -m "$model" --segment 10 --batch-size 5 --workers 1 "$tmp/field.wav" >"$tmp/segw1.jsonl"
expect 'cmp -s "$tmp/segw0/part-00000-of-00001.jsonl" "$tmp/segw1.jsonl" && [ "$(wc -l <"$tmp/segw1.jsonl")" -eq 9 ]' "segments by two workers: the rows of one"
expect 'grep -q "\"workers\":2,\"threads_per_worker\":1," "$tmp/segw0/part-00000-of-00001.jsonl.done"' "one long file: two workers of one thread (the .done summary says)"
py "
import json, sys
rows = [json.loads(l) for l in open('$tmp/seg.jsonl')]
ok = all(r['status'] == 'ok' and r['caption'] for r in rows)
ok &= [r['segment'] for r in rows] == list(range(len(rows))) and all(r['n_segments'] == len(rows) for r in rows)
ok &= rows[0]['start_s'] == 0 and abs(rows[-1]['end_s'] - 90.5) < 1e-3 and rows[-1]['start_s'] == 80
ok &= all(abs(a['end_s'] - b['start_s']) < 1e-6 for a, b in zip(rows, rows[1:]))
ok &= all(r['end_s'] - r['start_s'] <= 30 for r in rows) and 'truncated_s' not in rows[0]
sys.exit(0 if ok else 1)"
expect '[ $? -eq 0 ]' "segments: numbered, contiguous from 0 to the end of the file, the 0.5 s tail joined to the last"
"$bin" caption -q -m "$model" --segment 10 --hop 5 -o "$tmp/hop.jsonl" "$tmp/field.wav"
py "
import json, sys
rows = [json.loads(l) for l in open('$tmp/hop.jsonl')]
ok = [r['start_s'] for r in rows] == [5.0 * i for i in range(17)] and abs(rows[-1]['end_s'] - 90.5) < 1e-3
ok &= all(abs(r['end_s'] - r['start_s'] - 10) < 1e-6 for r in rows[:-1])
sys.exit(0 if ok else 1)"
expect '[ $? -eq 0 ]' "--hop 5: overlapping windows every 5 s up to the end"
"$bin" caption -q -m "$model" "$tmp/cut.wav" >"$tmp/cut.jsonl"
py "
import json, sys
seg = [json.loads(l) for l in open('$tmp/seg.jsonl')][2]; cut = json.loads(open('$tmp/cut.jsonl').read())
sys.exit(0 if seg['tokens'] == cut['tokens'] and seg['score'] == cut['score'] and seg['start_s'] == 20 else 1)"
expect '[ $? -eq 0 ]' "a segment's caption is that of the same stretch captioned on its own"
"$bin" caption -q -m "$model" --segment 10 --format csv -o "$tmp/seg.csv" "$tmp/field.wav" "$tmp/short.wav"
expect '[ "$(head -1 "$tmp/seg.csv")" = "file_name,start_s,end_s,caption_predicted" ] && [ "$(wc -l <"$tmp/seg.csv")" -eq 12 ]' "segment CSV: header with times, 9 + 2 rows"
expect 'sed -n 2p "$tmp/seg.csv" | grep -q "^field.wav,0.000,10.000,[a-z]"' "segment CSV rows"

# subtitles of one input: SRT and WebVTT, cues in order with the segment times
"$bin" caption -q -m "$model" --segment 10 --format srt -o "$tmp/field.srt" "$tmp/field.wav"
expect 'head -2 "$tmp/field.srt" | tr -d "\r" | paste -sd" " | grep -q "^1 00:00:00,000 --> 00:00:10,000$"' "SRT first cue"
expect 'grep -q "^9$" "$tmp/field.srt" && grep -q "^00:01:20,000 --> 00:01:30,500$" "$tmp/field.srt"' "SRT last cue covers the tail"
"$bin" caption -q -m "$model" --segment 10 --format vtt "$tmp/field.wav" >"$tmp/field.vtt"
expect '[ "$(head -1 "$tmp/field.vtt")" = "WEBVTT" ] && grep -q "^00:00:10.000 --> 00:00:20.000$" "$tmp/field.vtt"' "WebVTT header and cues"
expect '[ "$(grep -c -- "-->" "$tmp/field.vtt")" -eq 9 ]' "one cue per segment"
"$bin" caption -q -m "$model" --format srt "$tmp/field.wav" "$tmp/short.wav" >/dev/null 2>"$tmp/e"
expect '[ $? -eq 2 ] && grep -q -- "--output-dir" "$tmp/e"' "subtitles of several inputs point to --output-dir"

# per-file outputs
"$bin" caption -q -m "$model" --segment 10 --output-dir "$tmp/per" --per-file txt,json,srt,vtt -o "$tmp/per.jsonl" \
  "$tmp/field.wav" "$tmp/short.wav" "$data/audio/example.flac" "$tmp/missing.wav"
for f in field.wav short.wav example.flac; do
  for e in txt json srt vtt; do expect '[ -s "$tmp/per/$f.$e" ]' "per-file $f.$e"; done
done
expect '[ -s "$tmp/per/missing.wav.json" ] && [ ! -e "$tmp/per/missing.wav.txt" ]' "a failed input gets its .json (with the error) and no .txt"
expect '[ "$(wc -l <"$tmp/per/field.wav.txt")" -eq 9 ] && head -1 "$tmp/per/field.wav.txt" | grep -q "^\[00:00:00.000 --> 00:00:10.000\] [a-z]"' "timed .txt lines"
py "
import json, sys
d = json.load(open('$tmp/per/field.wav.json')); rows = [json.loads(l) for l in open('$tmp/per.jsonl') if 'field.wav' in l]
sys.exit(0 if d['id'] == 'field.wav' and d['segments'] == rows else 1)"
expect '[ $? -eq 0 ]' "per-file .json holds exactly the file's rows"
expect '! ls "$tmp/per" | grep -q "\.tmp$"' "no temporary files left"
"$bin" caption -q -m "$model" --output-dir "$tmp/per2" "$data/audio/example.flac" >/dev/null
expect '[ -s "$tmp/per2/example.flac.txt" ] && [ -s "$tmp/per2/example.flac.json" ] && [ "$(ls "$tmp/per2" | wc -l)" -eq 2 ]' "--output-dir defaults to txt,json"
expect '[ "$(cat "$tmp/per2/example.flac.txt")" = "$(py "import json; print(json.load(open(\"$tmp/per2/example.flac.json\"))[\"caption\"])")" ]' ".txt = the caption of the .json"

# WavCaps-style JSON export: a valid document; failed inputs only on stderr
"$bin" caption -m "$model" --format wavcaps -o "$tmp/wc.json" "$data/audio/example.flac" "$tmp/short.wav" "$tmp/missing.wav" 2>"$tmp/e"
py "
import json, sys
d = json.load(open('$tmp/wc.json'))
ok = d['num_captions_per_audio'] == 1 and [x['id'] for x in d['data']] == ['example.flac', 'short.wav']
ok &= all(x['caption'] and x['audio'] and x['duration'] > 0 for x in d['data'])
sys.exit(0 if ok else 1)"
expect '[ $? -eq 0 ] && grep -q missing.wav "$tmp/e"' "WavCaps JSON: valid, one entry per captioned file, failures on stderr"

# -o DIR/: part files and completion markers; the union of the parts is the whole set
mkdir -p "$tmp/set"
for i in $(seq -w 1 12); do ln -s "$data/audio/example.flac" "$tmp/set/s$i.flac"; done
for i in 0 1 2; do "$bin" caption -q -m "$model" --shard $i/3 -o "$tmp/parts/" "$tmp/set"; done
expect '[ "$(ls "$tmp/parts" | paste -sd" ")" = "part-00000-of-00003.jsonl part-00000-of-00003.jsonl.done part-00001-of-00003.jsonl part-00001-of-00003.jsonl.done part-00002-of-00003.jsonl part-00002-of-00003.jsonl.done" ]' "part-0000I-of-0000N files and .done markers"
expect '[ "$(cat "$tmp"/parts/*.jsonl | wc -l)" -eq 12 ]' "the parts hold every input once"
py "
import json, sys
d = json.load(open('$tmp/parts/part-00001-of-00003.jsonl.done'))
sys.exit(0 if d['complete'] and d['ok'] == 4 and d['shard'] == '1/3' and d['audio_h'] > 0 else 1)"
expect '[ $? -eq 0 ]' "the marker is a JSON summary"
SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_TASK_COUNT=3 "$bin" caption -q -m "$model" -o "$tmp/slurm/" "$tmp/set"
expect 'cmp -s "$tmp/slurm/part-00002-of-00003.jsonl" "$tmp/parts/part-00002-of-00003.jsonl"' "a Slurm array task writes its own part"
chmod 000 "$tmp/parts" 2>/dev/null
if [ "$(id -u)" != 0 ]; then
  "$bin" caption -q -m "$model" -o "$tmp/parts/" "$tmp/set" 2>/dev/null; expect '[ $? -eq 1 ]' "unwritable output is systemic (exit 1)"
fi
chmod 755 "$tmp/parts"

# decode threads and batch halving on out-of-memory change no row
"$bin" caption -q -m "$model" --batch-size 4 --workers 1 "$tmp/set" "$tmp/short.wav" "$tmp/missing.wav" >"$tmp/ref.jsonl"
"$bin" caption -q -m "$model" --batch-size 4 "$tmp/set" "$tmp/short.wav" "$tmp/missing.wav" >"$tmp/auto.jsonl"
expect 'cmp -s "$tmp/ref.jsonl" "$tmp/auto.jsonl"' "default CPU workers (--workers 0): the rows of one worker"
"$bin" caption -q -m "$model" --batch-size 2 --workers 3 --threads 2 "$tmp/set" "$tmp/short.wav" "$tmp/missing.wav" >"$tmp/w3t.jsonl"
expect 'cmp -s "$tmp/ref.jsonl" "$tmp/w3t.jsonl"' "--workers 3 sharing 2 threads: identical rows in input order"
"$bin" caption -q -m "$model" --workers 9 --device cuda:0,1 "$tmp/set" >/dev/null 2>&1; expect '[ $? -eq 2 ]' "more GPU workers than the limit: a usage error"
"$bin" caption -q -m "$model" --batch-size 4 --decode-threads 5 "$tmp/set" "$tmp/short.wav" "$tmp/missing.wav" >"$tmp/dt.jsonl"
expect 'cmp -s "$tmp/ref.jsonl" "$tmp/dt.jsonl"' "--decode-threads 5: identical rows in the same order"
"$bin" caption -q -m "$model" --batch-size 3 --device cpu,cpu,cpu --decode-threads 2 "$tmp/set" "$tmp/short.wav" "$tmp/missing.wav" >"$tmp/w3.jsonl"
expect 'cmp -s "$tmp/ref.jsonl" "$tmp/w3.jsonl"' "three workers (--device cpu,cpu,cpu): identical rows in input order"
AC_FAULT_NOMEM_ABOVE=1 "$bin" caption -q -m "$model" --batch-size 4 --device cpu,cpu "$tmp/set" "$tmp/short.wav" "$tmp/missing.wav" >"$tmp/oom2.jsonl"
expect 'cmp -s "$tmp/ref.jsonl" "$tmp/oom2.jsonl"' "out-of-memory halving with two workers: identical rows"
"$bin" caption -q -m "$model" --device cuda:7x "$tmp/set" >/dev/null 2>&1; expect '[ $? -eq 2 ]' "an unknown device is a usage error"
"$bin" caption -q -m "$model" --device cpu,cuda:0 "$tmp/set" >/dev/null 2>&1; expect '[ $? -eq 2 ]' "cpu and cuda workers do not mix"
"$bin" caption -q -m "$model" --precision bf16 "$tmp/set" >/dev/null 2>&1; expect '[ $? -eq 2 ]' "bf16 is refused on the CPU"
if ! "$bin" devices 2>/dev/null | grep -q "^cuda:[0-9]"; then
  "$bin" caption -q -m "$model" --device cuda:0 "$tmp/set" >"$tmp/nogpu" 2>"$tmp/e"
  expect '[ $? -eq 1 ] && [ ! -s "$tmp/nogpu" ] && grep -q "cuda:0" "$tmp/e"' "no GPU: --device cuda:0 is systemic (exit 1, no rows)"
fi
AC_FAULT_NOMEM_ABOVE=1 "$bin" caption -m "$model" --batch-size 4 "$tmp/set" "$tmp/short.wav" "$tmp/missing.wav" >"$tmp/oom.jsonl" 2>"$tmp/e"
rc=$?
expect '[ $rc -eq 0 ] && cmp -s "$tmp/ref.jsonl" "$tmp/oom.jsonl"' "out of memory at 4 and 2 clips: halved to 1, identical rows"
expect 'grep -q "out of memory at 4 clips.*batch size now 2" "$tmp/e" && grep -q "batch size now 1" "$tmp/e"' "halving is reported"
AC_FAULT_NOMEM_ABOVE=0 "$bin" caption -q -m "$model" "$tmp/set" >/dev/null 2>&1
expect '[ $? -eq 0 ]' "AC_FAULT_NOMEM_ABOVE=0 is off"

# machine-readable progress when stderr is not a terminal
"$bin" caption -m "$model" --progress 0.000001 --batch-size 1 "$tmp/set" 2>"$tmp/prog" >/dev/null
py "
import json, sys
ls = [json.loads(l)['progress'] for l in open('$tmp/prog') if l.startswith('{\"progress\"')]
sys.exit(0 if len(ls) >= 10 and ls[-1]['files_done'] == 12 and ls[-1]['files_total'] == 12 else 1)"
expect '[ $? -eq 0 ]' "progress JSON lines on stderr"
expect 'tail -1 "$tmp/prog" | grep -q "12 ok, 0 failed, 0 skipped (already done), 12 clips"' "final summary"

# SIGKILL in segment mode, then --resume: every (file, segment) exactly once, no partial file left behind. The set
# is sized so that a clean run takes >= 2 s on this machine, so the kills land mid-run (tests/kill_resume.sh)
. "$(dirname "$0")/kill_resume.sh"
mkdir -p "$tmp/long"
for i in $(seq 1 16); do ln -s "$tmp/mid.wav" "$tmp/long/c$i.wav"; done  # x 6 segments each
seg=("$bin" caption -q -m "$model" --segment 5 --batch-size 4)  # an array: kill -9 must reach audiocap itself
size_set "$tmp/long" "$tmp/mid.wav" wav 1000 "${seg[@]}" -o "$tmp/seg_ref.jsonl" "$tmp/long"
n_long=$n_set
out="$tmp/seg_resumed.jsonl"
kill_resume "$T" "$out" "${seg[@]}" --resume -o "$out" "$tmp/long"
"${seg[@]}" --resume -o "$out" "$tmp/long"
expect '[ $kills_mid -ge 3 ]' "the segment run was really killed mid-output ($kills_mid of $kills kills)"
expect '[ "$(wc -l <"$tmp/seg_ref.jsonl")" -eq $((n_long * 6)) ]' "the clean run: 6 segment rows for each of $n_long files"
expect 'cmp -s "$out" "$tmp/seg_ref.jsonl"' "after $kills kills and resumes: the same rows as one clean run ($(wc -l <"$out") vs $(wc -l <"$tmp/seg_ref.jsonl"))"

# --check: decode-only scan, no model needed; the same rows (ids, statuses, durations) without captions
"$bin" caption --check -q "$tmp/set" "$tmp/short.wav" "$tmp/missing.wav" >"$tmp/check.jsonl"
py "
import json, sys
c = [json.loads(l) for l in open('$tmp/check.jsonl')]; r = [json.loads(l) for l in open('$tmp/ref.jsonl')]
ok = [(x['id'], x['status'], x.get('duration_s')) for x in c] == [(x['id'], x['status'], x.get('duration_s')) for x in r]
ok &= all('caption' not in x and 'model' not in x for x in c) and c[-1]['status'] == 'error'
sys.exit(0 if ok else 1)"
expect '[ $? -eq 0 ]' "--check: the caption run's ids, statuses and durations, no captions, no model"
"$bin" caption --check --format csv "$tmp/set" >/dev/null 2>&1; expect '[ $? -eq 2 ]' "--check writes jsonl only"

# usage errors
"$bin" caption -m "$model" --hop 5 x.wav >/dev/null 2>&1; expect '[ $? -eq 2 ]' "--hop without --segment"
"$bin" caption -m "$model" --segment 10 --hop 11 x.wav >/dev/null 2>&1; expect '[ $? -eq 2 ]' "--hop longer than --segment"
"$bin" caption -m "$model" --segment 31 x.wav >/dev/null 2>&1; expect '[ $? -eq 2 ]' "--segment over 30 s"
"$bin" caption -m "$model" --per-file txt x.wav >/dev/null 2>&1; expect '[ $? -eq 2 ]' "--per-file without --output-dir"
"$bin" caption -m "$model" --output-dir "$tmp/x" --per-file pdf x.wav >/dev/null 2>&1; expect '[ $? -eq 2 ]' "unknown --per-file format"

echo "test_outputs: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
