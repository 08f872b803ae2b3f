#!/usr/bin/env python3
"""The upstream PyTorch CoNeTTE (conette 0.3.1) timed on the GPU, as the baseline our CUDA engine is measured against.

Model: the full-size random-weight CoNeTTE of tools/make_fixtures.py (FULL: ConvNeXt-Tiny 3/3/9/3 96..768, 1024-point
STFT, 224 mels; 6-layer d=256 decoder, 4371-token vocabulary; beam 3, max 20 tokens), built by the upstream classes.
  --make-model DIR   builds it (seeded) and saves DIR/hf_bin (config.json + pytorch_model.bin, the Hugging Face
                     layout tools/convert.py --hf reads): tools/gpu-check converts that for our engine, so both engines
                     run the SAME weights (caption lengths, hence decoding cost, depend on them). Also DIR/sample.wav
                     (3 s) and DIR/sample.json, its upstream caption, which gpu-check compares with audiocap's.
  --model DIR        loads DIR/hf_bin/pytorch_model.bin into the same architecture (without it: built from the seed).
Timed, on synthetic 10 s clips at 32 kHz (noise + tones; no resampling, as our bench_gpu_* start from decoded PCM):
  (i)  encoder only: model.preprocessor (channel mean, the ConvNeXt encoder with its torchlibrosa log-mel front end,
       conette huggingface/preprocessor.py forward), float32 and bf16 autocast, channels_last, batch 1..512;
  (ii) whole captioning: CoNeTTEModel.forward (preprocessor + CoNeTTEPLM's own batched beam search, beam 3),
       float32 and bf16 autocast.
One JSON line per configuration on stdout:
  {"bench": "torch_encoder"|"torch_caption", "precision": "fp32"|"bf16", "batch": B, "clips_per_s": .., ...}
then, per bench and precision, the best batch again with "best": true. Human text goes to stderr.
Timing: one warm-up call per shape (which also runs cuDNN's algorithm search: torch.backends.cudnn.benchmark is on,
PyTorch's best case for fixed shapes, unless --no-cudnn-benchmark), then calls until both a minimum count (3) and a
minimum time (1 s) are reached, with torch.cuda.synchronize() before each clock read; clips/s = clips / wall time.
A configuration that fails prints {"bench": .., "error": ..} and the script exits 1 after the others ran. "fp32" is PyTorch's default float32
(cuDNN convolutions may use TF32: torch.backends.cudnn.allow_tf32 defaults to True; matmuls do not), reported as
"tf32_conv" / "tf32_matmul" in each line.

Offline stand-ins (the GPU machine has no network, and its image lacks spaCy and NLTK): conette imports spaCy only to
tokenize training text and NLTK only for its English stop-word list (which decides forbid_rep_mask, a state-dict
buffer that --model overwrites anyway); when either is missing, a small module stands in for it before conette is
imported (the word list is NLTK 3.8.1's, the one tools/make_fixtures.py writes); likewise soundfile, which
tools/make_fixtures.py imports to write WAV files and this script never calls. pytorch-lightning 2.x dropped the
type alias conette's pl_modules/base.py imports (_METRIC_COLLECTION, an annotation only): it is supplied if absent.

usage: gpu_ref.py --make-model DIR [--seed 2024]
       gpu_ref.py [--model DIR] [--device cuda|cpu] [--quick] [--size full|tiny] [--time-limit S]
                  [--encoder-batches 1,8,...] [--caption-batches 1,16,...] [--precisions fp32,bf16]
Tested here on the CPU with `refenv/bin/python bench/gpu_ref.py --device cpu --quick --size tiny`.
"""
import argparse
import json
import math
import os
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def install_stand_ins():
    """Modules conette imports but never uses at inference, when the environment lacks them (see module doc)."""
    import importlib.machinery
    import importlib.util

    def module(name):  # a spec, so that later importlib.util.find_spec(name) calls (lazy_loader) still work
        m = types.ModuleType(name)
        m.__spec__ = importlib.machinery.ModuleSpec(name, None)
        return m

    if importlib.util.find_spec("soundfile") is None:  # tools/make_fixtures.py writes WAVs with it; not used here
        sf = module("soundfile")

        def _no_soundfile(*a, **k):
            raise RuntimeError("stand-in soundfile: no audio file I/O here")

        sf.read = sf.write = sf.info = _no_soundfile
        sf.__stand_in__ = True
        sys.modules["soundfile"] = sf
    if importlib.util.find_spec("nltk") is None:
        from make_fixtures import NLTK_ENGLISH_STOPWORDS
        nltk = module("nltk")
        corpus = module("nltk.corpus")
        util = module("nltk.util")

        class _Stopwords:
            @staticmethod
            def words(lang="english"):
                if lang != "english":
                    raise LookupError(f"stand-in NLTK has English stop words only, not {lang}")
                return list(NLTK_ENGLISH_STOPWORDS)

        corpus.stopwords = _Stopwords()
        util.ngrams = lambda seq, n: zip(*(list(seq)[i:] for i in range(n)))
        nltk.corpus, nltk.util = corpus, util
        nltk.download = lambda *a, **k: True
        nltk.__stand_in__ = True
        sys.modules.update({"nltk": nltk, "nltk.corpus": corpus, "nltk.util": util})
    if importlib.util.find_spec("spacy") is None:
        spacy = module("spacy")

        class _NoSpacy:
            def __init__(self, name):
                self.name = name

            def __call__(self, text):
                raise RuntimeError("stand-in spaCy: text tokenization is not available (inference needs none)")

        spacy.load = lambda name, *a, **k: _NoSpacy(name)
        spacy.blank = lambda lang, *a, **k: _NoSpacy(lang)
        spacy.__stand_in__ = True
        sys.modules["spacy"] = spacy
    try:
        import pytorch_lightning.utilities.types as plt
        if not hasattr(plt, "_METRIC_COLLECTION"):
            from typing import Any, Mapping, Union
            plt._METRIC_COLLECTION = Union[Any, Mapping[str, Any]]
    except ImportError:
        pass


def build(size_name: str, seed: int, model_dir):
    import torch
    import make_fixtures as mf
    tmp = tempfile.mkdtemp(prefix="gpu_ref_")
    mf.setup_offline_shims(Path(tmp))
    size = mf.FULL if size_name == "full" else mf.TINY
    model = mf.build_model(size, seed=seed)
    if model_dir is not None:
        sd = torch.load(Path(model_dir) / "hf_bin" / "pytorch_model.bin", map_location="cpu", weights_only=False)
        model.load_state_dict(sd)
    model.eval()
    return model


def make_model(out: Path, size_name: str, seed: int):
    """The hf_bin half of make_fixtures.save_variants: what tools/convert.py --hf reads."""
    import torch
    t0 = time.perf_counter()
    model = build(size_name, seed, None)
    t1 = time.perf_counter()
    d = out / "hf_bin"
    d.mkdir(parents=True, exist_ok=True)
    model.config.to_json_file(str(d / "config.json"))
    torch.save(dict(model.state_dict()), d / "pytorch_model.bin")
    n = sum(p.numel() for p in model.parameters())
    t2 = time.perf_counter()
    log(f"gpu_ref: {size_name} model, seed {seed}, {n / 1e6:.1f} M parameters -> {d} "
        f"(built in {t1 - t0:.1f} s, saved in {t2 - t1:.1f} s)")
    # One 3 s clip and the caption the upstream code gives it (CPU, float32): tools/gpu-check captions the same clip
    # with audiocap on the converted file, which proves both engines got the same weights.
    x = clips(1, 3 * 32000, "cpu")
    write_wav_f32(out / "sample.wav", x[0, 0].numpy(), 32000)
    cap = model(x, sr=32000, beam_size=3)["cands"][0]
    (out / "sample.json").write_text(json.dumps({"clip": "sample.wav", "beam_size": 3, "caption": cap}) + "\n")
    log(f"gpu_ref: sample.wav -> {cap!r} ({time.perf_counter() - t2:.1f} s)")


def write_wav_f32(path: Path, x, sr: int):
    """Mono IEEE-float WAV (format 3), by hand: the GPU image has no soundfile."""
    import struct
    data = x.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, sr, sr * 4, 4, 32)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
                     + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)


def clips(batch: int, n: int, device, seed: int = 7):
    """(batch, 1, n) float32 at 32 kHz: noise + a tone per clip, amplitude within [-1, 1]."""
    import torch
    g = torch.Generator(device="cpu").manual_seed(seed + batch)
    t = torch.arange(n, dtype=torch.float32) / 32000
    f = 200 + 37 * torch.arange(batch, dtype=torch.float32)[:, None]
    x = 0.1 * torch.randn(batch, n, generator=g) + 0.3 * torch.sin(2 * math.pi * f * t)
    return x.clamp(-1, 1)[:, None, :].to(device)


def timed(fn, sync, min_iters: int, min_seconds: float):
    """Seconds per call: one warm-up, then calls until both minimums are met."""
    fn()
    sync()
    iters, t0 = 0, time.perf_counter()
    while True:
        fn()
        iters += 1
        sync()
        dt = time.perf_counter() - t0
        if iters >= min_iters and dt >= min_seconds:
            return dt / iters, iters


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--make-model", type=Path, help="build the random model and save DIR/hf_bin, then exit")
    ap.add_argument("--model", type=Path, help="folder made by --make-model (its weights are loaded)")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--size", choices=["full", "tiny"], default="full")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="fewer batch sizes and iterations")
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length (default 10 s)")
    ap.add_argument("--encoder-batches", help="default 1,8,32,64,128,256,512 (quick: 1,32,128)")
    ap.add_argument("--caption-batches", help="default 1,16,64,256 (quick: 1,32)")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--beam", type=int, default=3)
    ap.add_argument("--time-limit", type=float, default=300.0, help="stop starting new configurations after this")
    ap.add_argument("--no-cudnn-benchmark", action="store_true",
                    help="leave cuDNN's algorithm search off (default: on, PyTorch's best case for fixed shapes)")
    args = ap.parse_args()

    install_stand_ins()
    import torch
    torch.set_grad_enabled(False)
    if args.make_model is not None:
        make_model(args.make_model, args.size, args.seed)
        return 0

    t_start = time.perf_counter()
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        log("gpu_ref: no CUDA device visible to torch: skipped")
        return 77
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    q = args.quick
    enc_batches = [int(b) for b in (args.encoder_batches or ("1,32,128" if q else "1,8,32,64,128,256,512")).split(",")]
    cap_batches = [int(b) for b in (args.caption_batches or ("1,32" if q else "1,16,64,256")).split(",")]
    precisions = args.precisions.split(",")
    min_iters, min_seconds = (1, 0.2) if q else (3, 1.0)
    if dev.type == "cpu":
        min_iters, min_seconds = 1, 0.0

    model = build(args.size, args.seed, args.model).to(dev)
    n = int(args.seconds * 32000)
    common = {"device": name, "torch": torch.__version__, "seconds": args.seconds,
              "tf32_conv": bool(torch.backends.cudnn.allow_tf32), "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
              "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
              "model": "conette-0.3.1 full random" if args.size == "full" else "conette-0.3.1 tiny random"}
    log(f"gpu_ref: {name}, torch {torch.__version__}, {args.size} model, {args.seconds:g} s clips")

    def autocast(prec):
        if prec == "bf16":
            return torch.autocast(device_type=dev.type, dtype=torch.bfloat16)
        return torch.autocast(device_type=dev.type, enabled=False)

    # Each (bench, precision) sweep gets an equal share of the time limit; larger batches are dropped once it is spent.
    share = args.time_limit / (2 * len(precisions))
    best = {}
    failures = []

    def sweep(bench, batches, prec, fn_for_batch, extra):
        t0 = time.perf_counter()
        for b in batches:
            if time.perf_counter() - t0 > share or time.perf_counter() - t_start > args.time_limit:
                log(f"gpu_ref: {bench} {prec}: time share spent, batches from {b} not run")
                break
            x = clips(b, n, dev)
            try:
                with autocast(prec):
                    dt, iters = timed(fn_for_batch(x), sync, min_iters, min_seconds)
            except torch.cuda.OutOfMemoryError:
                log(f"gpu_ref: {bench} {prec} batch {b}: out of memory, larger batches not run")
                del x
                torch.cuda.empty_cache()
                break
            except Exception as e:  # one configuration failing must not cost the others their figures
                log(f"gpu_ref: {bench} {prec} batch {b}: {type(e).__name__}: {e}")
                print(json.dumps({"bench": bench, "precision": prec, "batch": b,
                                  "error": f"{type(e).__name__}: {e}"[:300], **common}), flush=True)
                failures.append(f"{bench} {prec} {b}")
                break
            r = {"bench": bench, "precision": prec, "batch": b, "clips_per_s": round(b / dt, 3),
                 "ms_per_batch": round(dt * 1e3, 3), "iters": iters, **extra, **common}
            if dev.type == "cuda":
                r["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
                torch.cuda.reset_peak_memory_stats(dev)
            print(json.dumps(r), flush=True)
            key = (bench, prec)
            if key not in best or r["clips_per_s"] > best[key]["clips_per_s"]:
                best[key] = r
            del x

    # (i) the encoder: preprocessor = channel mean + ConvNeXt (+ log-mel front end), channels_last.
    pre = model.preprocessor.to(memory_format=torch.channels_last)
    for prec in precisions:
        sweep("torch_encoder", enc_batches, prec, lambda x: (lambda: pre(x, 32000)),
              {"channels_last": True})
    # (ii) whole captioning: preprocessor + the upstream batched beam search.
    first_caption = {}

    def caption_fn(x):
        def f():
            out = model(x, sr=32000, beam_size=args.beam)
            first_caption.setdefault(x.shape[0], out["cands"][0])
        return f

    # Under bf16 autocast on CUDA, conette's beam search fails (H200, torch 2.11: "Index put requires the source
    # and destination dtypes match, got BFloat16 for the destination and Float for the source"), so bf16 runs
    # the encoder under autocast and the upstream decoder + beam search in fp32 (labelled autocast "encoder").
    def caption_fn_bf16(x):
        def f():
            batch = model.preprocessor(x, 32000)
            with torch.autocast(device_type=dev.type, enabled=False):
                out = model(batch["audio"].float(), x_shapes=batch["audio_shape"], preprocess=False,
                            beam_size=args.beam)
            first_caption.setdefault(x.shape[0], out["cands"][0])
        return f

    for prec in precisions:
        if prec == "bf16":
            sweep("torch_caption", cap_batches, prec, caption_fn_bf16,
                  {"beam": args.beam, "channels_last": True, "autocast": "encoder"})
        else:
            sweep("torch_caption", cap_batches, prec, caption_fn, {"beam": args.beam, "channels_last": True})
    for (bench, prec), r in best.items():
        print(json.dumps({**r, "best": True}), flush=True)
    if first_caption:
        log(f"gpu_ref: e.g. caption of clip 0: {next(iter(first_caption.values()))!r}")
    log(f"gpu_ref: done in {time.perf_counter() - t_start:.1f} s" + (f"; failed: {failures}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
