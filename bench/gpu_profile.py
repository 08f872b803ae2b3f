#!/usr/bin/env python3
"""One JSON line (for tools/gpu-check's results.jsonl) from the stderr of a program run with AC_GPU_PROFILE=1:

  encoder  the "gpu profile: ..." lines kernels/gpu_encoder.cu prints when the model is freed: device time per
           part of the encoder (front end, stem, dwconv+LN, MLP, downsample per stage, head), as us per clip
  decoder  the "gpu decoder profile: ..." lines of kernels/gpu_decoder.cu: device time per kernel class of the
           decode steps (linears by sublayer with their LayerNorms, attention, classifier, beam search, gather), as
           us per step,
           and the host's time issuing the launches per step (near the device's: launch-bound)

usage: gpu_profile.py encoder STDERR BATCH MLP STFT
       gpu_profile.py decoder STDERR BATCH
Exits 1 when the file has no such lines (the program did not honour AC_GPU_PROFILE).
"""
import json
import re
import sys

PART = r"(.+?)\s+([0-9.]+) ms\s+([0-9.]+) %"


def encoder(lines, batch, mlp, stft):
    calls, parts, paths, upload = 0, {}, "?", None
    for line in lines:
        m = re.match(r"gpu profile: (\d+) encoder calls", line)
        if m:
            calls = int(m.group(1))
        m = re.match(r"gpu profile: upload\s+([0-9.]+) ms on the copy stream, ([0-9.]+) GB/s", line)
        if m:
            upload = (float(m.group(1)), float(m.group(2)))
            continue
        m = re.match(r"gpu profile: " + PART, line)
        if m:
            parts[m.group(1).strip()] = (float(m.group(2)), float(m.group(3)))
        m = re.search(r", (\S+) MLP,", line)
        if m:
            paths = m.group(1)
    if not calls or not parts:
        sys.exit("no encoder profile lines (AC_GPU_PROFILE not honoured?)")
    clips = calls * batch
    row = {"bench": "gpu_encoder_profile", "precision": "bf16", "batch": batch, "mlp": mlp, "stft": stft,
           "mlp_paths": paths, "calls": calls,
           "us_per_clip": round(1000 * sum(ms for ms, _ in parts.values()) / clips, 1)}
    for name, (ms, pct) in parts.items():
        row[name] = f"{1000 * ms / clips:.1f} us ({pct:.0f} %)"
    if upload:  # on the copy stream, beside the parts (the model's stream waits only for what is left of it)
        row["upload (copy stream)"] = f"{1000 * upload[0] / clips:.1f} us, {upload[1]:.1f} GB/s"
    return row


def decoder(lines, batch):
    head, parts = None, {}
    for line in lines:
        m = re.match(r"gpu decoder profile: (\d+) calls, (\d+) steps, ([0-9.]+) ms of device time, "
                     r"([0-9.]+) ms issuing", line)
        if m:
            head = (int(m.group(1)), int(m.group(2)), float(m.group(3)), float(m.group(4)))
            continue
        m = re.match(r"gpu decoder profile: " + PART, line)
        if m:
            parts[m.group(1).strip()] = (float(m.group(2)), float(m.group(3)))
    if not head or not parts or not head[0] or not head[1]:
        sys.exit("no decoder profile lines (AC_GPU_PROFILE not honoured?)")
    calls, steps, dev_ms, issue_ms = head
    row = {"bench": "gpu_decoder_profile", "precision": "bf16", "batch": batch, "calls": calls,
           "steps_per_call": round(steps / calls, 1), "ms_per_call": round(dev_ms / calls, 3),
           "us_per_step": round(1000 * dev_ms / steps, 1), "issue_us_per_step": round(1000 * issue_ms / steps, 1)}
    for name, (ms, pct) in parts.items():  # the cross K/V once per call, the rest every step
        per = f"{1000 * ms / calls:.1f} us/call" if name == "cross K/V" else f"{1000 * ms / steps:.1f} us/step"
        row[name] = f"{per} ({pct:.0f} %)"
    return row


def main():
    a = sys.argv[1:]
    if len(a) == 5 and a[0] == "encoder":
        row = encoder(open(a[1], errors="replace"), int(a[2]), a[3], a[4])
    elif len(a) == 3 and a[0] == "decoder":
        row = decoder(open(a[1], errors="replace"), int(a[2]))
    else:
        sys.exit(__doc__)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
