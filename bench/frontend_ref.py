#!/usr/bin/env python3
"""Times the upstream PyTorch front end on the clips bench_frontend wrote: conette 0.3.1's own
CoNeTTEPreprocessor._load_resample (torchaudio.load -> torchaudio.functional.resample -> channel mean) and its
ConvNeXt encoder's spectrogram_extractor + logmel_extractor modules, float32 CPU, batch size 1.
usage: frontend_ref.py DIR [N_CLIPS=20] [THREADS]
"""
import statistics
import sys
import time
from pathlib import Path

import torch
from conette.huggingface.preprocessor import CoNeTTEPreprocessor


def main():
    d = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    if len(sys.argv) > 3:
        torch.set_num_threads(int(sys.argv[3]))
    torch.set_grad_enabled(False)
    pre = CoNeTTEPreprocessor().eval()
    enc = pre.encoder
    t_load, t_mel, t_all = [], [], []
    for i in [0] + list(range(n)):  # first: warm-up
        path = str(d / f"clip_{i:03d}.wav")
        t0 = time.perf_counter()
        x, _ = pre._load_resample([path])
        t1 = time.perf_counter()
        enc.logmel_extractor(enc.spectrogram_extractor(x))
        t2 = time.perf_counter()
        t_load.append(t1 - t0)
        t_mel.append(t2 - t1)
        t_all.append(t2 - t0)
    t_load, t_mel, t_all = t_load[1:], t_mel[1:], t_all[1:]
    ml, mm, ma = (statistics.median(v) * 1e3 for v in (t_load, t_mel, t_all))
    print(f"upstream PyTorch front end (torch {torch.__version__}), {n} clips, {torch.get_num_threads()} threads, "
          f"median ms per clip:")
    print(f"  load+resample+mean {ml:.2f} | log-mel {mm:.2f} | total {ma:.2f} ms  -> {1e3 / ma:.1f} clips/s")
    print(f"CSV,pytorch,{torch.get_num_threads()},{ml:.4f},{mm:.4f},{ma:.4f}")


if __name__ == "__main__":
    main()
