#!/usr/bin/env python3
"""Model fixtures made by the upstream code: random-weight CoNeTTE models saved in the published checkpoint's
layout, plus per-stage reference outputs.

The upstream classes (conette 0.3.1: CoNeTTEConfig, CoNeTTEModel, its ConvNeXt encoder, CoNeTTEPLM, the
torchlibrosa front end) are built with seeded random weights and a small synthetic vocabulary, in two sizes:
  tiny (committed, tests/data/fixtures/tiny/): the same classes with a small front end (n_fft 128, 32 mels),
       encoder dims 8/16/24/32 with one block per stage, a 2-layer d=8 decoder;
  full (tests/data/fixtures/full/, git-ignored, --full): the real architecture (ConvNeXt-Tiny 3/3/9/3, 96..768,
       n_fft 1024, 224 mels; decoder 6 layers, d 256, 8 heads, FFN 2048).
Each is saved the way the Hugging Face hub publishes CoNeTTE, in two variants that the converter must both read:
  hf_bin/:          config.json with tokenizer_state + pytorch_model.bin (torch zip pickle), keys `scale_layer`
  hf_safetensors/:  config.json without tokenizer + model.safetensors holding the tokenizer in `_extra_state_`,
                    and the original ConvNeXt key name `gamma` (which the upstream load hook renames).
The tiny model is also saved in the DCASE-2024 baseline's three-file layout (dcase2024/, see
save_dcase2024_layout).
For each input clip it dumps, at batch size 1 in float32 (TF32 off), every stage the engine will be compared on
(see STAGES below) into dumps/<clip>.<stage>.npy, with manifest.json. tensors.json holds the SHA-256 of every
state_dict tensor's float32/int64/bool bytes, as torch holds them, for the convert -> load round-trip test.

Offline shims (this machine reaches PyPI only): spaCy's en_core_web_sm model is replaced by spacy.blank("en")
(the tokenizer's encoder is never used here; decoding only reads itos), NLTK's English stop-word list is written
to a temporary NLTK data directory (it decides model.forbid_rep_mask, which the converter copies as data), and the
AudioSet label CSV the model wrapper loads is given synthetic names.

Run: refenv/bin/python tools/make_fixtures.py [--full]   (tiny: ~20 s; full: ~3 min on 2 cores)
"""
import argparse
import copy
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parent.parent
AUDIO = ROOT / "tests" / "data" / "audio"

# NLTK 3.8.1 corpora/stopwords/english (179 words).
NLTK_ENGLISH_STOPWORDS = """i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
yourselves he him his himself she she's her hers herself it it's its itself they them their theirs themselves what
which who whom this that that'll these those am is are was were be been being have has had having do does did doing
a an the and but if or because as until while of at by for with about against between into through during before
after above below to from up down in out on off over under again further then once here there when where why how
all any both each few more most other some such no nor not only own same so than too very s t can will just don
don't should should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn doesn't hadn hadn't
hasn hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't
wasn wasn't weren weren't won won't wouldn wouldn't""".split()

CONTENT_WORDS = """rain pouring people talking background dog barking bird chirping car engine running water
flowing wind blowing door closing footsteps walking music playing child crying man woman speaking loudly softly
machine humming train passing horn honking crowd cheering thunder rumbling fire crackling leaves rustling bell
ringing clock ticking phone typing keyboard birds insects buzzing waves crashing shore stream river boat motor
vehicle distance nearby street traffic siren alarm beeping""".split()
FUNCTION_WORDS = "a the is are and in of with while on as by from to at some".split()

TINY = dict(n_fft=128, n_mels=32, dims=[8, 16, 24, 32], depths=[1, 1, 1, 1], d_model=8, nhead=2,
            num_decoder_layers=2, dim_feedforward=16, n_words=60)
# The full size has a realistic vocabulary: 4371 tokens, the DCASE-2024 baseline's (models.md §2), padded with
# synthetic words; the vocabulary size drives the classifier's cost and the upstream decoder's recomputation.
FULL = dict(n_fft=1024, n_mels=224, dims=[96, 192, 384, 768], depths=[3, 3, 9, 3], d_model=256, nhead=8,
            num_decoder_layers=6, dim_feedforward=2048, n_words=4371 - 4 - 7)


def setup_offline_shims(tmp: Path):
    nltk_dir = tmp / "nltk_data" / "corpora" / "stopwords"
    nltk_dir.mkdir(parents=True)
    (nltk_dir / "english").write_text("\n".join(NLTK_ENGLISH_STOPWORDS) + "\n")
    os.environ["NLTK_DATA"] = str(tmp / "nltk_data")
    as_dir = tmp / "audioset_mapping"
    as_dir.mkdir()
    rows = ["index,mid,display_name"] + [f'{i},/m/fixture{i},"class {i}"' for i in range(527)]
    (as_dir / "class_labels_indices.csv").write_text("\n".join(rows) + "\n")
    import conette.transforms.audioset_mapping as am
    am._DEFAULT_CACHE_PATH = as_dir
    import spacy
    spacy.load = lambda *a, **k: spacy.blank("en")


def tokenizer_state(n_words: int) -> dict:
    words = (FUNCTION_WORDS + CONTENT_WORDS + [f"word{i:04d}" for i in range(n_words)])[:n_words]
    itos = {0: "<pad>", 1: "<bos>", 2: "<eos>", 3: "<unk>"} | {i + 4: w for i, w in enumerate(words)}
    return {
        "_target_": "conette.tokenization.aac_tokenizer.AACTokenizer",
        "_version_": "2.2.0",
        "_type_": "txt",
        "tokenizer": {
            "hparams": {"level": "word", "lowercase": True, "punctuation_mode": "remove", "normalize": True},
            "normalize": True, "added_special_tokens": [], "max_sentence_size": 22, "min_sentence_size": 3,
            "n_sentences_fit": 1000,
            "itos": itos, "stoi": {w: i for i, w in itos.items()}, "vocab": {w: 10 for w in itos.values()},
        },
    }


def build_model(size: dict, seed: int):
    from conette.huggingface.config import CoNeTTEConfig
    from conette.huggingface.model import CoNeTTEModel
    from conette.nn.encoders.convnext import ConvNeXt
    from conette.pl_modules.common import build_proj_lin
    from torch import nn
    from torchlibrosa.stft import LogmelFilterBank, Spectrogram

    torch.manual_seed(seed)
    config = CoNeTTEConfig(d_model=size["d_model"], nhead=size["nhead"],
                           num_decoder_layers=size["num_decoder_layers"], dim_feedforward=size["dim_feedforward"],
                           tokenizer_state=tokenizer_state(size["n_words"]))
    model = CoNeTTEModel(config, device="cpu", inference=True, offline=True)
    if size is TINY:
        # Same classes, smaller: the encoder as convnext_tiny builds it (conette convnext.py:356-426) but with
        # small dims, one block per stage, a 128-point STFT and 32 mels; the projection from its width.
        enc = ConvNeXt(in_chans=1, num_classes=527, depths=size["depths"], dims=size["dims"], drop_path_rate=0.0,
                       use_speed_perturb=False, waveform_input=True, use_specaug=False, return_clip_outputs=True,
                       return_frame_outputs=True)
        enc.spectrogram_extractor = Spectrogram(n_fft=size["n_fft"], hop_length=320, win_length=size["n_fft"],
                                                window="hann", center=True, pad_mode="reflect",
                                                freeze_parameters=True)
        enc.logmel_extractor = LogmelFilterBank(sr=32000, n_fft=size["n_fft"], n_mels=size["n_mels"], fmin=50,
                                                fmax=14000, ref=1.0, amin=1e-10, top_db=None,
                                                freeze_parameters=True)
        enc.bn0 = nn.BatchNorm2d(size["n_mels"])
        enc.downsample_layers[0][0] = nn.Conv2d(1, size["dims"][0], kernel_size=(4, 4), stride=(4, 4),
                                                padding=(4, 0))
        model.preprocessor.encoder = enc
        model.model.projection = build_proj_lin(size["dims"][-1], size["d_model"], False)
    # Random but well-conditioned values everywhere the upstream init leaves constants (layer scale 1e-6, LN 1/0,
    # BN stats 0/1), so that every block visibly contributes and beam search has real choices to make.
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "spectrogram_extractor" in name or "logmel_extractor" in name:
                continue
            if name.endswith("scale_layer"):
                p.copy_(0.3 + 0.2 * torch.rand(p.shape, generator=g))
            elif "norm" in name and name.endswith("weight") or name.endswith("bn0.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            elif "classifier.weight" in name:
                p.copy_(0.6 * torch.randn(p.shape, generator=g))
        # a favoured <eos> (id 2): hypotheses finish at various lengths instead of all being forced at max_pred_size
        model.model.decoder.classifier.bias[2] += 2.0
        bn = model.preprocessor.encoder.bn0
        bn.running_mean.copy_(-40.0 + 10.0 * torch.randn(bn.running_mean.shape, generator=g))
        bn.running_var.copy_(100.0 + 50.0 * torch.rand(bn.running_var.shape, generator=g))
    model.eval()
    return model


def tensor_bytes(t: torch.Tensor) -> bytes:
    return t.detach().contiguous().cpu().numpy().tobytes()


def save_variants(model, out: Path):
    """The two published layouts (see module docstring)."""
    sd = model.state_dict()  # CoNeTTEModel.state_dict(): tensors only (+ _extra_state_ when non-tensor states)
    # hf_bin: what save_pretrained writes with the tokenizer in the config
    d = out / "hf_bin"
    d.mkdir(parents=True)
    model.config.to_json_file(str(d / "config.json"))
    torch.save({k: v for k, v in sd.items()}, d / "pytorch_model.bin")
    # hf_safetensors: tokenizer only in _extra_state_, old `gamma` names, safetensors weights
    d = out / "hf_safetensors"
    d.mkdir(parents=True)
    cfg = model.config.to_dict()
    cfg["tokenizer_state"] = None
    (d / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    import pickle
    from safetensors.torch import save_file
    extra = {"model.tokenizers.0._extra_state": model.model.tokenizers["0"].get_extra_state()} \
        if "0" in dict(model.model.tokenizers.items()) else None
    sd2 = {k.replace("scale_layer", "gamma"): v.contiguous() for k, v in sd.items() if k != "_extra_state_"}
    if extra is None:
        raise RuntimeError("no tokenizer found under model.tokenizers")
    sd2["_extra_state_"] = torch.frombuffer(bytearray(pickle.dumps(extra)), dtype=torch.uint8)
    save_file(sd2, str(d / "model.safetensors"), metadata={"format": "pt"})
    return sd


TINY_CLIPS = ["clipped_8k_mono.wav", "speech_16k_mono.wav", "example.flac"]  # 1 s, 1.5 s, 3 s
FULL_SYNTH_SECONDS = [1.0, 10.0, 30.0]  # extra synthetic clips for the full-size fixtures


def synth_clips(out: Path):
    """Seeded noise + tone bursts at 44.1 kHz stereo, written as 16-bit WAV beside the full fixtures."""
    rng = np.random.default_rng(5)
    paths = []
    for sec in FULL_SYNTH_SECONDS:
        n = int(sec * 44100)
        t = np.arange(n) / 44100
        env = (np.sin(2 * np.pi * 0.5 * t) > 0).astype(np.float64)
        x = 0.1 * rng.standard_normal((n, 2)) + 0.4 * (env * np.sin(2 * np.pi * 700 * t))[:, None]
        p = out / f"synth_{sec:g}s.wav"
        sf.write(p, np.clip(x, -1, 1), 44100, subtype="PCM_16")
        paths.append(p)
    return paths


def generated(row) -> list:
    """A beam's generated ids: up to and including the first <eos> (id 2), else the whole row (forced at
    max_pred_size). Padding is only ever after <eos>; a <pad> id generated mid-sentence is kept."""
    ids = [int(v) for v in row]
    return ids[: ids.index(2) + 1] if 2 in ids else ids


def encoder_stages(model, x) -> dict:
    """logmel, bn0, stem, stage0-3, frame_embs, projection of `model` on x (1, n), by the upstream modules."""
    enc, plm, cap = model.preprocessor.encoder, model.model, {}
    hooks = [enc.logmel_extractor.register_forward_hook(lambda m, i, o: cap.__setitem__("logmel", o[0, 0])),
             enc.bn0.register_forward_hook(lambda m, i, o: cap.__setitem__("bn0", o.transpose(1, 3)[0, 0])),
             enc.downsample_layers[0].register_forward_hook(lambda m, i, o: cap.__setitem__("stem", o[0]))]
    for s in range(4):
        hooks.append(enc.stages[s].register_forward_hook(lambda m, i, o, s=s: cap.__setitem__(f"stage{s}", o[0])))
    out = enc(x, torch.as_tensor([[x.shape[1]]]))
    for h in hooks:
        h.remove()
    fe = out["frame_embs"].transpose(1, 2)  # (1, T', C3), as the preprocessor hands it on
    cap["frame_embs"] = fe[0]
    cap["projection"] = plm.encode_audio(fe, torch.as_tensor([[fe.shape[2], int(out["frame_embs_lens"][0])]]))["frame_embs"][0]
    return cap


def dump_clip(model, path: Path, dumps: Path, stem: str, beams, full: bool, hf_tok=None, model64=None) -> dict:
    """Every stage for one clip at batch size 1; returns its manifest entry."""
    enc = model.preprocessor.encoder
    plm = model.model
    captured = {}
    hooks = [
        enc.logmel_extractor.register_forward_hook(lambda m, i, o: captured.__setitem__("logmel", o[0, 0])),
        enc.bn0.register_forward_hook(lambda m, i, o: captured.__setitem__("bn0", o.transpose(1, 3)[0, 0])),
        enc.downsample_layers[0].register_forward_hook(lambda m, i, o: captured.__setitem__("stem", o[0])),
    ]
    for s in range(4):
        hooks.append(enc.stages[s].register_forward_hook(
            lambda m, i, o, s=s: captured.__setitem__(f"stage{s}", o[0])))
    x, _ = model.preprocessor._load_resample([str(path)])
    batch = model.preprocessor(str(path))
    for h in hooks:
        h.remove()
    if full:  # the tiny fixtures use committed audio whose 32 kHz signal tests/data/golden already holds
        captured["audio_32k"] = x[0]
    captured["frame_embs"] = batch["audio"][0]                     # (T', C3)
    captured["frame_embs_lens"] = batch["audio_shape"][:, 1]      # (1,)
    enc_outs = plm.encode_audio(batch["audio"], batch["audio_shape"])
    captured["projection"] = enc_outs["frame_embs"][0]             # (D, T')
    # Teacher forcing on a fixed caption: the default task's token, 8 words, <eos>.
    task_tok = int(plm.task_id_to_token_id[0])
    caps = torch.tensor([[task_tok] + list(range(4, 12)) + [2]], dtype=torch.long)
    captured["forcing_tokens"] = caps[0]
    logits = plm.decode_audio(enc_outs, "forcing", caps_in=caps[:, :-1])
    captured["forcing_logits"] = logits[0]  # teacher_forcing returns (bsize, V, S)

    entry = {"file": path.name, "stages": {}, "beam_search": [], "reference_f32_rel_error": {}}
    # The reference's own float32 rounding, per stage: the same modules in float64 on the same samples.
    # max|f32 - f64| / max|f64|; no float32 implementation can be expected to agree more closely than this.
    if model64 is not None:
        ref64 = encoder_stages(model64, x.double())
        for name, t64 in ref64.items():
            t32 = captured[name].double()
            entry["reference_f32_rel_error"][name] = float((t32 - t64).abs().max() / t64.abs().max().clamp_min(1e-30))
    for name, t in captured.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy())  # C order: transposed views would save Fortran order
        fname = f"{stem}.{name}.npy"
        np.save(dumps / fname, a)
        entry["stages"][name] = {"file": fname, "shape": list(a.shape), "dtype": str(a.dtype)}
    for task, k in beams:
        if task == "<bos>":  # no task embedding (the DCASE-2024 baseline's start): plain <bos>, same generate()
            ids = torch.tensor([plm.bos_id])
            preds, lprobs, mpreds, mlprobs = plm.decode_audio(enc_outs, "generate", bos_id=ids, beam_size=k)
            out = {"cands": plm.tokenizer.decode_rec(preds), "preds": preds, "lprobs": lprobs,
                   "mult_cands": plm.tokenizer.decode_rec(mpreds)[0:1], "mult_preds": mpreds, "mult_lprobs": mlprobs}
        else:
            out = model(str(path), task=task, beam_size=k)
        r = {"task": task, "beam_size": k, "caption": out["cands"][0],
             "tokens": generated(out["preds"][0]), "score": float(out["lprobs"][0]),
             "beams": [{"caption": c, "tokens": generated(p), "score": float(l)}
                       for c, p, l in zip(out["mult_cands"][0], out["mult_preds"][0], out["mult_lprobs"][0])]}
        if hf_tok is not None:  # the DCASE-2024 layout's tokenizer.json decoding the same ids
            r["caption_hf"] = hf_tok.decode(r["tokens"], skip_special_tokens=True)
            for b in r["beams"]:
                b["caption_hf"] = hf_tok.decode(b["tokens"], skip_special_tokens=True)
        entry["beam_search"].append(r)
    return entry


def tensor_table(sd) -> dict:
    return {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape),
                "sha256": hashlib.sha256(tensor_bytes(v)).hexdigest()}
            for k, v in sd.items() if k != "_extra_state_"}


def save_dcase2024_layout(model, out: Path):
    """The DCASE-2024 Task 6 baseline's three files (dcase2024-task6-baseline src/dcase24t6/nn/ckpt.py): a
    ConvNeXt checkpoint {"model": state_dict} with the original `gamma` names, a Lightning checkpoint whose
    "state_dict" holds TransDecoderModel's projection/decoder/forbid_rep_mask, and a Hugging Face `tokenizers`
    WordLevel tokenizer.json. Made from the same random model (its task tokens become ordinary words)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    d = out / "dcase2024"
    d.mkdir(parents=True)
    sd = model.state_dict()
    enc = {k[len("preprocessor.encoder."):].replace("scale_layer", "gamma"): v for k, v in sd.items()
           if k.startswith("preprocessor.encoder.")}
    torch.save({"model": enc}, d / "convnext_tiny_fixture.pth")
    dec = {k[len("model."):]: v for k, v in sd.items() if k.startswith("model.") and k != "model.task_id_to_token_id"}
    torch.save({"epoch": 192, "global_step": 1544, "pytorch-lightning_version": "2.2.1", "state_dict": dec,
                "hyper_parameters": {"in_features": dec["projection.2.weight"].shape[1],
                                     "d_model": dec["projection.2.weight"].shape[0], "label_smoothing": 0.2,
                                     "mixup_alpha": 0.4, "min_pred_size": 3, "max_pred_size": 20, "beam_size": 3,
                                     "verbose": 1},
                "hparams_name": "kwargs", "optimizer_states": [], "lr_schedulers": [], "loops": {},
                "callbacks": {"ModelCheckpoint": {"best_model_path": "best.ckpt"}}}, d / "best.ckpt")
    itos = model.model.tokenizers["0"]._itos
    tok = Tokenizer(WordLevel({w: i for i, w in itos.items()}, unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(["<pad>", "<bos>", "<eos>", "<unk>"])  # as the baseline's (ids unchanged)
    tok.save(str(d / "tokenizer.json"))
    return tok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="make the full-size fixtures (git-ignored) instead of tiny")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    size = FULL if args.full else TINY
    out = ROOT / "tests" / "data" / "fixtures" / ("full" if args.full else "tiny")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        setup_offline_shims(Path(tmp))
        model = build_model(size, seed=2024)
        sd = save_variants(model, out)
        hf_tok = None if args.full else save_dcase2024_layout(model, out)
        (out / "tensors.json").write_text(json.dumps(tensor_table(sd), indent=0) + "\n")
        dumps = out / "dumps"
        dumps.mkdir()
        model64 = copy.deepcopy(model).double()
        clips = [AUDIO / c for c in TINY_CLIPS] + (synth_clips(out) if args.full else [])
        beams = [("clotho", k) for k in range(1, 6)] + [("audiocaps", 3), ("<bos>", 3)]
        manifest = {
            "generator": "tools/make_fixtures.py" + (" --full" if args.full else ""),
            "versions": {"conette": __import__("conette").__version__, "torch": torch.__version__},
            "size": {k: v for k, v in size.items()},
            "layouts": {
                "audio_32k": "(n,) (full fixtures only)", "logmel": "(T, n_mels) before bn0", "bn0": "(T, n_mels)",
                "stem": "(C0, T0, F0) after downsample_layers[0] (conv + LN)",
                "stage{s}": "(Cs, Ts, Fs) after stages[s] (downsample_layers[s] precedes it)",
                "frame_embs": "(T', C3) mean over frequency", "frame_embs_lens": "(1,)",
                "projection": "(D, T') after model.projection (Linear + ReLU)",
                "forcing_tokens": "(S+1,) task token, words, <eos>",
                "forcing_logits": "(V, S) decoder logits for inputs forcing_tokens[:-1]",
            },
            "clips": [dump_clip(model, c, dumps, c.name.replace(".", "_"), beams, args.full, hf_tok, model64)
                      for c in clips],
        }
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{out}: {len(sd) - 1} tensors, {total / 1e6:.2f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
