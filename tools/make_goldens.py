#!/usr/bin/env python3
"""Goldens for the audio front end, computed by the upstream code itself.

For every file in tests/data/audio/ this runs the CoNeTTE preprocessor's own loading path
(conette 0.3.1 `CoNeTTEPreprocessor._load_resample`: torchaudio.load -> torchaudio.functional.resample to
32 kHz -> mean over channels) and the modules of its ConvNeXt encoder (`spectrogram_extractor`,
`logmel_extractor`, `bn0`; conette src/conette/nn/encoders/convnext.py), at batch size 1, float32, and writes
tests/data/golden/*.npy plus manifest.json. bn0 gets seeded random statistics (the real ones come from the model
file). It also records torchaudio.functional.resample on synthetic signals at odd rates and output lengths for
inputs long enough that torchaudio's float32 rounding of new*len/orig matters.

Run: tools/setup-ref-env && refenv/bin/python tools/make_goldens.py   (about a minute on 2 cores)
"""
import copy
import hashlib
import json
import math
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torchaudio
from torchaudio.functional import resample

import conette
from conette.huggingface.preprocessor import CoNeTTEPreprocessor

ROOT = Path(__file__).resolve().parent.parent
AUDIO = ROOT / "tests" / "data" / "audio"
OUT = ROOT / "tests" / "data" / "golden"
BN0_FOR = {"speech_16k_mono.wav"}  # bn0 output is stored for this one only (tests/data size budget)
STFT_ROWS = [0, 1, 2, 3, 100, 255, 256, 511, 512]  # rows of the DFT weights stored (the full pair is 4 MB)


def save(name, arr):
    np.save(OUT / name, np.ascontiguousarray(arr))
    return name


def sha256(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def main():
    torch.set_grad_enabled(False)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.npy"):
        old.unlink()

    pre = CoNeTTEPreprocessor().eval()
    enc = pre.encoder
    g = torch.Generator().manual_seed(1234)
    enc.bn0.running_mean.copy_(torch.randn(224, generator=g) * 10.0 - 30.0)
    enc.bn0.running_var.copy_(torch.rand(224, generator=g) * 200.0 + 10.0)
    enc.bn0.weight.copy_(1.0 + 0.1 * torch.randn(224, generator=g))
    enc.bn0.bias.copy_(0.1 * torch.randn(224, generator=g))

    # The same modules in float64: measures the reference's own float32 rounding, per bin depth below the frame's
    # loudest bin, so the tests can show where a 0.01 dB agreement is physically meaningful.
    enc64 = copy.deepcopy(enc).double()
    stft = enc.spectrogram_extractor.stft
    manifest = {
        "generator": "tools/make_goldens.py",
        "versions": {"conette": conette.__version__, "torch": torch.__version__,
                     "torchaudio": torchaudio.__version__, "numpy": np.__version__,
                     "torchaudio_backends": torchaudio.list_audio_backends()},
        "constants": {
            # (513, 224), >99 % zeros: stored as flat indices of the non-zero entries + their values
            "melW_shape": list(enc.logmel_extractor.melW.shape),
            "melW_nonzero_index": save("melW_nonzero_index.npy",
                                       np.flatnonzero(enc.logmel_extractor.melW.numpy()).astype(np.int64)),
            "melW_nonzero_value": save("melW_nonzero_value.npy", enc.logmel_extractor.melW.numpy().ravel()[
                np.flatnonzero(enc.logmel_extractor.melW.numpy())]),
            "stft_rows": STFT_ROWS,
            "conv_real_rows": save("conv_real_rows.npy", stft.conv_real.weight[STFT_ROWS, 0, :].numpy()),
            "conv_imag_rows": save("conv_imag_rows.npy", stft.conv_imag.weight[STFT_ROWS, 0, :].numpy()),
            # rows: weight, bias, running_mean, running_var
            "bn0": save("bn0_params.npy", torch.stack([enc.bn0.weight, enc.bn0.bias, enc.bn0.running_mean,
                                                       enc.bn0.running_var]).numpy()),
            "bn0_eps": enc.bn0.eps,
        },
        "files": [],
        "resample": [],
        "resample_lengths": [],
    }

    for path in sorted(AUDIO.iterdir()):
        stem = path.name.replace(".", "_")
        wav, sr = torchaudio.load(str(path))  # what CoNeTTEPreprocessor._load does
        w64 = wav.double()
        entry = {
            "file": path.name, "sha256": sha256(path), "sample_rate": sr, "channels": wav.shape[0],
            "n_in": wav.shape[1],
            # decode fingerprint: torchaudio.load's samples, compared exactly by the C test
            "decoded_sum": float(w64.sum()), "decoded_sumsq": float((w64 * w64).sum()),
            "decoded_head": wav[:, :8].flatten().tolist(), "decoded_tail": wav[:, -8:].flatten().tolist(),
        }
        x, _ = pre._load_resample([str(path)])  # (1, n) at 32 kHz, channel mean after resampling
        entry["n_32k"] = x.shape[1]
        entry["audio_32k"] = save(f"{stem}.audio_32k.npy", x[0].numpy())
        try:
            spec = enc.spectrogram_extractor(x)          # (1, 1, T, 513)
            logmel = enc.logmel_extractor(spec)          # (1, 1, T, 224)
            bn = enc.bn0(logmel.transpose(1, 3)).transpose(1, 3)  # convnext.py:290-292
            entry["frames"] = logmel.shape[2]
            lm64 = enc64.logmel_extractor(enc64.spectrogram_extractor(x.double()))[0, 0].numpy()
            lm32 = logmel[0, 0].numpy().astype(np.float64)
            depth = lm32.max(axis=1, keepdims=True) - lm32  # dB below the frame's loudest bin
            err = np.abs(lm32 - lm64)
            above = lm32 > -90.0
            near, deep = above & (depth <= 90.0), above & (depth > 90.0)
            entry["reference_f32_error_db"] = {"within_90dB_of_frame_peak": float(err[near].max(initial=0.0)),
                                               "deeper": float(err[deep].max(initial=0.0))}
            entry["logmel"] = save(f"{stem}.logmel.npy", logmel[0, 0].numpy())
            if path.name in BN0_FOR:
                entry["bn0"] = save(f"{stem}.bn0.npy", bn[0, 0].numpy())
        except Exception as e:  # the reference cannot process this input: the engine must refuse it too
            entry["reference_error"] = f"{type(e).__name__}: {e}"
        manifest["files"].append(entry)
        print(path.name, {k: entry[k] for k in ("sample_rate", "channels", "n_in", "n_32k")},
              entry.get("frames", entry.get("reference_error")), file=sys.stderr)

    # Odd rates on a seeded signal (noise + tones), 0.05 s each, to 32 kHz.
    rng = np.random.default_rng(7)
    for sr in [1000, 7999, 11025, 12000, 24000, 44100, 176400, 192000]:
        n = max(int(0.05 * sr), 64)
        t = np.arange(n) / sr
        sig = (0.3 * rng.standard_normal(n) + 0.5 * np.sin(2 * np.pi * min(3000.0, sr / 3) * t)).astype(np.float32)
        y = resample(torch.from_numpy(sig)[None], sr, 32000)[0]
        manifest["resample"].append({"orig": sr, "new": 32000, "input": save(f"resample_{sr}.in.npy", sig),
                                     "output": save(f"resample_{sr}.out.npy", y.numpy())})

    # Output lengths, by running torchaudio.resample itself (zeros of the given length).
    lengths = [(44100, 32000, n) for n in (1, 2, 440, 441, 442, 1000, 100003)]
    lengths += [(8000, 32000, 1), (8000, 32000, 12345), (7999, 32000, 54321), (96000, 32000, 7)]
    # The smallest 44.1 kHz length above 2^24 output samples where float32(new*len/orig) changes the ceil.
    n = 2 ** 24 * 441 // 320
    while True:
        exact = math.ceil(Fraction(320 * n, 441))
        f32 = int(torch.ceil(torch.as_tensor(320 * n / 441)).item())
        if exact != f32:
            break
        n += 1
    lengths.append((44100, 32000, n))
    for orig, new, n in lengths:
        y = resample(torch.zeros(1, n), orig, new)
        manifest["resample_lengths"].append({"orig": orig, "new": new, "in_len": n, "out_len": y.shape[1]})
        print("resample length", orig, new, n, "->", y.shape[1], file=sys.stderr)

    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)", file=sys.stderr)


if __name__ == "__main__":
    main()
