#!/usr/bin/env python3
"""Times the upstream CoNeTTE PyTorch inference (conette 0.3.1 CoNeTTEModel, the full-size random-weight model of
tools/make_fixtures.py --full, float32 CPU) on the given files: clips/s at each batch size, peak RSS.
usage: caption_ref.py THREADS BATCH_SIZES FILE...    (BATCH_SIZES: comma-separated, e.g. 1,4,8)
Prints one CSV line per batch size: CSV,pytorch,threads,batch,clips,seconds,clips_per_s,peak_rss_mb
"""
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import make_fixtures as mf  # noqa: E402


def main():
    threads, batches, files = int(sys.argv[1]), [int(b) for b in sys.argv[2].split(",")], sys.argv[3:]
    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    with tempfile.TemporaryDirectory() as tmp:
        mf.setup_offline_shims(Path(tmp))
        model = mf.build_model(mf.FULL, seed=2024)
        model(files[:1])  # warm-up
        for bs in batches:
            t0 = time.perf_counter()
            for i in range(0, len(files), bs):
                model(files[i:i + bs])  # loads, resamples, pads the batch, encodes, beam search (beam 3)
            dt = time.perf_counter() - t0
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"CSV,pytorch,{threads},{bs},{len(files)},{dt:.3f},{len(files) / dt:.3f},{rss:.0f}", flush=True)
        # The upstream preprocessor alone (load, resample, log-mel, ConvNeXt encoder): what is left of PyTorch's
        # time once decoding costs nothing, i.e. the bound on any speed-up that comes from the decoder.
        for bs in batches:
            t0 = time.perf_counter()
            for i in range(0, len(files), bs):
                model.preprocessor(files[i:i + bs])
            dt = time.perf_counter() - t0
            print(f"CSV,pytorch-encoder-only,{threads},{bs},{len(files)},{dt:.3f},{len(files) / dt:.3f},", flush=True)


if __name__ == "__main__":
    main()
