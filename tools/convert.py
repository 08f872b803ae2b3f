#!/usr/bin/env python3
"""Convert a published captioning checkpoint into an audiocap model file (weights/FORMAT.md, format_version 1).

Inputs
  --hf DIR            CoNeTTE as published on the Hugging Face hub (Labbeti/conette): config.json plus
                      pytorch_model.bin or model.safetensors. ConvNeXt keys may be named `scale_layer` or `gamma`
                      (renamed as conette's own load hook does); the tokenizer may sit in config.tokenizer_state or
                      in the `_extra_state_` tensor (a pickled dict).
  --dcase2024 CKPT    the DCASE-2024 Task 6 baseline's Lightning checkpoint (decoder, key "state_dict"), with
      --tokenizer F   its tokenizer.json (Hugging Face `tokenizers` WordLevel) and
      --encoder F     the ConvNeXt checkpoint it loads (Zenodo 8020843, key "model").

PyTorch is not needed: .bin/.ckpt/.pth files (torch zip archives) are read by a restricted unpickler that
builds only tensors, storages and plain containers. Any other pickled global is refused: it is never imported or
called, and is replaced by an inert placeholder; conversion fails if such a placeholder is needed (e.g. in place
of a tensor), and the refused names are listed.

Only numpy and safetensors are required (tools/requirements-convert.txt).
"""
import argparse
import collections
import hashlib
import io
import json
import math
import pickle
import re
import sys
import zipfile
from pathlib import Path

import numpy as np

FORMAT_VERSION = "1"
CONVERTER_VERSION = "1.0"
CONETTE_TASKS_DEFAULT = ["clotho", "audiocaps", "macs", "wavcaps_audioset_sl", "wavcaps_bbc_sound_effects",
                         "wavcaps_freesound", "wavcaps_soundbible"]


class ConvertError(Exception):
    pass


# ---------------------------------------------------------------------------------------------------------------
# Restricted reader for torch zip checkpoints
# ---------------------------------------------------------------------------------------------------------------
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class Refused:
    """Inert stand-in for a pickled global outside the allow-list: never imported, never called."""

    def __init__(self, qualname, args=()):
        self.qualname = qualname

    def __call__(self, *args, **kwargs):
        return Refused(self.qualname)

    def __setstate__(self, state):
        pass

    def __repr__(self):
        return f"<refused {self.qualname}>"


def _bf16_to_f32(u16: np.ndarray) -> np.ndarray:
    return (u16.astype(np.uint32) << 16).view(np.float32)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    if isinstance(storage, Refused):
        raise ConvertError(f"tensor storage is a refused object ({storage.qualname})")
    arr = storage
    size, stride = tuple(size), tuple(stride)
    if len(size) == 0:
        return np.array(arr[storage_offset])
    need = storage_offset + sum((s - 1) * st for s, st in zip(size, stride)) + 1 if all(size) else storage_offset
    if need > arr.size:
        raise ConvertError(f"tensor of size {size} and stride {stride} reads past its storage ({arr.size} values)")
    view = np.lib.stride_tricks.as_strided(arr[storage_offset:], shape=size,
                                           strides=[st * arr.itemsize for st in stride], writeable=False)
    return np.ascontiguousarray(view)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "Counter"): collections.Counter,
    ("collections", "defaultdict"): collections.defaultdict,
    ("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "dict"): dict,
    ("builtins", "list"): list, ("builtins", "tuple"): tuple, ("builtins", "slice"): slice,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, storages=None):
        super().__init__(f)
        self.storages = storages
        self.refused = set()

    def find_class(self, module, name):
        fn = _ALLOWED.get((module, name))
        if fn is not None:
            return fn
        self.refused.add(f"{module}.{name}")
        return Refused(f"{module}.{name}")

    def persistent_load(self, pid):
        if self.storages is None or not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise ConvertError(f"unexpected persistent id {pid!r}")
        stype, key = pid[1], str(pid[2])
        if not isinstance(stype, _StorageType):
            raise ConvertError(f"storage of refused type {stype!r}")
        return self.storages(key, stype)


def load_pickle_bytes(data: bytes, what: str):
    up = _Unpickler(io.BytesIO(data))
    obj = up.load()
    return obj, up.refused


def load_torch_zip(path: Path):
    """Returns (object, refused global names) of a torch.save() zip archive, with tensors as numpy arrays."""
    if not zipfile.is_zipfile(path):
        raise ConvertError(f"{path}: not a PyTorch zip checkpoint (hint: legacy pre-1.6 torch.save files are not "
                           f"supported; re-save it with a current torch)")
    zf = zipfile.ZipFile(path)
    names = zf.namelist()
    pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkl) != 1:
        raise ConvertError(f"{path}: no single */data.pkl in the archive")
    prefix = pkl[0][: -len("data.pkl")]
    bo = prefix + "byteorder"
    if bo in names and zf.read(bo).strip() not in (b"little", b""):
        raise ConvertError(f"{path}: big-endian checkpoint")
    cache = {}

    def storage(key, stype):
        if key not in cache:
            raw = zf.read(f"{prefix}data/{key}")
            if stype.dtype == "bfloat16":
                cache[key] = _bf16_to_f32(np.frombuffer(raw, dtype=np.uint16))
            else:
                cache[key] = np.frombuffer(raw, dtype=stype.dtype)
        return cache[key]

    up = _Unpickler(io.BytesIO(zf.read(pkl[0])), storages=storage)
    return up.load(), up.refused


def load_weights(path: Path):
    """state_dict-like mapping name -> numpy array, from .safetensors or a torch zip file."""
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file
        try:
            return dict(load_file(str(path))), set()
        except Exception as e:  # bf16 is not a numpy dtype: read those tensors by hand
            if "bfloat16" not in str(e).lower() and "bf16" not in str(e).lower():
                raise ConvertError(f"{path}: {e}")
            return _load_safetensors_bf16(path), set()
    obj, refused = load_torch_zip(path)
    return obj, refused


def _load_safetensors_bf16(path: Path):
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    dt = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
          "U8": np.uint8, "I8": np.int8, "BOOL": np.bool_}
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        if v["dtype"] == "BF16":
            out[k] = _bf16_to_f32(np.frombuffer(data[b:e], dtype=np.uint16)).reshape(v["shape"])
        else:
            out[k] = np.frombuffer(data[b:e], dtype=dt[v["dtype"]]).reshape(v["shape"])
    return out


def sha256_file(path: Path) -> dict:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"name": path.name, "sha256": h.hexdigest(), "bytes": path.stat().st_size}


# ---------------------------------------------------------------------------------------------------------------
# The cnext-trans tensor table (weights/FORMAT.md)
# ---------------------------------------------------------------------------------------------------------------
E = "preprocessor.encoder."


def expected_tensors(hp: dict, fe: dict, n_tasks: int):
    """name -> (shape, kind) for every required tensor; kind in {float, bool, int64}."""
    enc, dec, V = hp["encoder"], hp["decoder"], hp["vocab_size"]
    C, depths, D, F = enc["dims"], enc["depths"], dec["d_model"], dec["dim_feedforward"]
    nb = fe["n_fft"] // 2 + 1
    t = {
        E + "spectrogram_extractor.stft.conv_real.weight": ([nb, 1, fe["n_fft"]], "float"),
        E + "spectrogram_extractor.stft.conv_imag.weight": ([nb, 1, fe["n_fft"]], "float"),
        E + "logmel_extractor.melW": ([nb, fe["n_mels"]], "float"),
        E + "downsample_layers.0.0.weight": ([C[0], enc["in_chans"], *enc["stem_kernel"]], "float"),
        E + "downsample_layers.0.0.bias": ([C[0]], "float"),
        E + "downsample_layers.0.1.weight": ([C[0]], "float"),
        E + "downsample_layers.0.1.bias": ([C[0]], "float"),
    }
    for p in ("weight", "bias", "running_mean", "running_var"):
        t[E + f"bn0.{p}"] = ([fe["n_mels"]], "float")
    for i in range(1, 4):
        t[E + f"downsample_layers.{i}.0.weight"] = ([C[i - 1]], "float")
        t[E + f"downsample_layers.{i}.0.bias"] = ([C[i - 1]], "float")
        t[E + f"downsample_layers.{i}.1.weight"] = ([C[i], C[i - 1], 2, 2], "float")
        t[E + f"downsample_layers.{i}.1.bias"] = ([C[i]], "float")
    for s in range(4):
        c = C[s]
        for b in range(depths[s]):
            p = E + f"stages.{s}.{b}."
            t[p + "dwconv.weight"] = ([c, 1, 7, 7], "float")
            t[p + "dwconv.bias"] = ([c], "float")
            t[p + "norm.weight"] = ([c], "float")
            t[p + "norm.bias"] = ([c], "float")
            t[p + "pwconv1.weight"] = ([4 * c, c], "float")
            t[p + "pwconv1.bias"] = ([4 * c], "float")
            t[p + "pwconv2.weight"] = ([c, 4 * c], "float")
            t[p + "pwconv2.bias"] = ([c], "float")
            t[p + "scale_layer"] = ([c], "float")
    t["model.projection.2.weight"] = ([D, hp["projection"]["in_features"]], "float")
    t["model.projection.2.bias"] = ([D], "float")
    t["model.decoder.emb_layer.weight"] = ([V, D], "float")
    t["model.decoder.pos_encoding.pos_embedding"] = ([dec["max_positions"], 1, D], "float")
    for l in range(dec["num_layers"]):
        p = f"model.decoder.layers.{l}."
        for a in ("self_attn", "multihead_attn"):
            t[p + f"{a}.in_proj_weight"] = ([3 * D, D], "float")
            t[p + f"{a}.in_proj_bias"] = ([3 * D], "float")
            t[p + f"{a}.out_proj.weight"] = ([D, D], "float")
            t[p + f"{a}.out_proj.bias"] = ([D], "float")
        t[p + "linear1.weight"] = ([F, D], "float")
        t[p + "linear1.bias"] = ([F], "float")
        t[p + "linear2.weight"] = ([D, F], "float")
        t[p + "linear2.bias"] = ([D], "float")
        for n in (1, 2, 3):
            t[p + f"norm{n}.weight"] = ([D], "float")
            t[p + f"norm{n}.bias"] = ([D], "float")
    t["model.decoder.classifier.weight"] = ([V, D], "float")
    t["model.decoder.classifier.bias"] = ([V], "float")
    t["model.forbid_rep_mask"] = ([V], "bool")
    if n_tasks:
        t["model.task_id_to_token_id"] = ([n_tasks], "int64")
    optional = {
        E + "norm.weight": ([C[3]], "float"), E + "norm.bias": ([C[3]], "float"),
        E + "head_audioset.weight": ([None, C[3]], "float"), E + "head_audioset.bias": ([None], "float"),
        E + "bn0.num_batches_tracked": ([], "int64"),
    }
    return t, optional


def check_tensors(tensors: dict, hp: dict, fe: dict, n_tasks: int, what: str):
    req, opt = expected_tensors(hp, fe, n_tasks)
    problems = []
    for name, (shape, _) in req.items():
        if name not in tensors:
            problems.append(f"missing {name} {shape}")
    for name, arr in tensors.items():
        spec = req.get(name) or opt.get(name)
        if spec is None:
            problems.append(f"unknown tensor {name} {list(arr.shape)}")
            continue
        shape, kind = spec
        if len(shape) != arr.ndim or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
            problems.append(f"misshaped {name}: {list(arr.shape)} (expected {shape})")
        ok = {"float": arr.dtype.kind == "f", "bool": arr.dtype == np.bool_,
              "int64": arr.dtype.kind in "iu"}[kind]
        if not ok:
            problems.append(f"{name} has dtype {arr.dtype} (expected {kind})")
    if problems:
        shown = problems[:30] + ([f"... and {len(problems) - 30} more"] if len(problems) > 30 else [])
        raise ConvertError(f"{what}: {len(problems)} tensor problem(s):\n  " + "\n  ".join(shown))


# ---------------------------------------------------------------------------------------------------------------
# Architecture description read from the checkpoint (shapes) and its config
# ---------------------------------------------------------------------------------------------------------------
def _need(tensors, name, what):
    if name not in tensors:
        raise ConvertError(f"{what}: missing tensor {name} (hint: is this a CoNeTTE / CNext-trans checkpoint?)")
    return tensors[name]


def infer_hparams(tensors: dict, dec_cfg: dict, what: str, frame_len_rule: str):
    conv_real = _need(tensors, E + "spectrogram_extractor.stft.conv_real.weight", what)
    melW = _need(tensors, E + "logmel_extractor.melW", what)
    stem = _need(tensors, E + "downsample_layers.0.0.weight", what)
    dims = [int(stem.shape[0])] + [int(_need(tensors, E + f"downsample_layers.{i}.1.weight", what).shape[0])
                                   for i in range(1, 4)]
    depths = []
    for s in range(4):
        blocks = {int(m.group(1)) for k in tensors
                  for m in [re.match(re.escape(E) + rf"stages\.{s}\.(\d+)\.", k)] if m}
        if not blocks or blocks != set(range(len(blocks))):
            raise ConvertError(f"{what}: stage {s} has blocks {sorted(blocks)} (expected 0..n-1)")
        depths.append(len(blocks))
    emb = _need(tensors, "model.decoder.emb_layer.weight", what)
    pos = _need(tensors, "model.decoder.pos_encoding.pos_embedding", what)
    proj = _need(tensors, "model.projection.2.weight", what)
    layers = {int(m.group(1)) for k in tensors for m in [re.match(r"model\.decoder\.layers\.(\d+)\.", k)] if m}
    lin1 = _need(tensors, "model.decoder.layers.0.linear1.weight", what)
    d_model = int(emb.shape[1])
    nhead = int(dec_cfg["nhead"])
    if d_model % nhead:
        raise ConvertError(f"{what}: d_model {d_model} is not divisible by nhead {nhead}")
    for key, got, want in (("d_model", d_model, dec_cfg.get("d_model", d_model)),
                           ("num_decoder_layers", len(layers), dec_cfg.get("num_layers", len(layers))),
                           ("dim_feedforward", int(lin1.shape[0]), dec_cfg.get("dim_feedforward", lin1.shape[0]))):
        if got != want:
            raise ConvertError(f"{what}: config says {key}={want} but the weights have {got}")
    n_fft = int(conv_real.shape[2])
    hp = {
        "encoder": {"in_chans": int(stem.shape[1]), "depths": depths, "dims": dims, "stem_kernel": [4, 4],
                    "stem_stride": [4, 4], "stem_padding": [4, 0], "ln_eps": 1e-6,
                    "frame_len_rule": frame_len_rule},
        "projection": {"in_features": int(proj.shape[1]), "out_features": int(proj.shape[0]), "activation": "relu"},
        "decoder": {"d_model": d_model, "nhead": nhead, "num_layers": len(layers),
                    "dim_feedforward": int(lin1.shape[0]), "activation": dec_cfg.get("activation", "gelu"),
                    "norm_first": False, "ln_eps": 1e-5, "emb_scale": math.sqrt(d_model),
                    "max_positions": int(pos.shape[0])},
        "vocab_size": int(emb.shape[0]),
    }
    if tuple(stem.shape[2:]) != (4, 4):
        raise ConvertError(f"{what}: stem kernel {tuple(stem.shape[2:])}, only the 4x4/4 stem "
                           f"(after_stem_dim=[252,56]) is supported")
    # Constants of the upstream class, not stored in checkpoints (conette convnext.py:144-153,201).
    fe = {"sample_rate": 32000, "n_fft": n_fft, "win_length": n_fft, "hop": 320, "window": "hann_periodic",
          "center": True, "pad_mode": "reflect", "n_mels": int(melW.shape[1]), "fmin": 50, "fmax": 14000,
          "mel_scale": "slaney", "amin": 1e-10, "ref": 1.0, "top_db": None, "bn_eps": 1e-5,
          "resampler": "torchaudio_sinc_hann", "lowpass_filter_width": 6, "rolloff": 0.99,
          "channel_mix": "mean_after_resample"}
    return hp, fe


def _itos_list(itos, vocab_size: int, what: str):
    if isinstance(itos, dict):
        try:
            pairs = {int(k): v for k, v in itos.items()}
        except (TypeError, ValueError):
            raise ConvertError(f"{what}: tokenizer itos keys are not integers")
        if sorted(pairs) != list(range(len(pairs))):
            raise ConvertError(f"{what}: tokenizer itos ids are not 0..n-1")
        itos = [pairs[i] for i in range(len(pairs))]
    if not isinstance(itos, list) or not all(isinstance(s, str) for s in itos):
        raise ConvertError(f"{what}: tokenizer itos is not a list of strings")
    if len(itos) != vocab_size:
        raise ConvertError(f"{what}: the tokenizer has {len(itos)} tokens but the weights' vocabulary has "
                           f"{vocab_size} (hint: config and weights come from different models?)")
    return itos


def conette_tokenizer(config: dict, extra: dict, what: str):
    """The AACTokenizer txt state, from config.tokenizer_state or the `_extra_state_` dict."""
    state = config.get("tokenizer_state")
    where = "config.json tokenizer_state"
    if not state:
        where = "_extra_state_"
        cand = [v for k, v in (extra or {}).items() if k.startswith("model.tokenizers.") and k.endswith("_extra_state")]
        if not cand:
            raise ConvertError(f"{what}: no tokenizer: config.json has no tokenizer_state and the weights have no "
                               f"model.tokenizers.*._extra_state in _extra_state_")
        state = cand[0]
    if isinstance(state, Refused) or not isinstance(state, dict) or "tokenizer" not in state:
        raise ConvertError(f"{what}: unreadable tokenizer state in {where}")
    tok = state["tokenizer"]
    itos = tok.get("itos", tok.get("_itos"))  # txt state, or a bin state's attribute dict
    if itos is None:
        raise ConvertError(f"{what}: tokenizer state in {where} has no itos")
    return itos, where


# ---------------------------------------------------------------------------------------------------------------
# Front ends
# ---------------------------------------------------------------------------------------------------------------
def convert_hf(d: Path, name: str):
    what = str(d)
    cfg_path = d / "config.json"
    if not cfg_path.exists():
        raise ConvertError(f"{d}: no config.json (hint: pass the directory of the Hugging Face snapshot)")
    config = json.loads(cfg_path.read_text())
    for fname in ("model.safetensors", "pytorch_model.bin"):
        wpath = d / fname
        if wpath.exists():
            break
    else:
        raise ConvertError(f"{d}: neither model.safetensors nor pytorch_model.bin")
    raw, refused = load_weights(wpath)
    if isinstance(raw, dict) and "state_dict" in raw and not any(k.startswith("model.") for k in raw):
        raw = raw["state_dict"]
    extra = None
    tensors, name_map = {}, {}
    for k, v in raw.items():
        if k == "_extra_state_":
            blob = bytes(np.asarray(v, dtype=np.uint8).tobytes())
            extra, r2 = load_pickle_bytes(blob, "_extra_state_")
            refused |= r2
            continue
        if isinstance(v, Refused) or not isinstance(v, np.ndarray):
            raise ConvertError(f"{what}: {k} is not a tensor ({v!r}); refused pickled globals: {sorted(refused)}")
        new = k.replace("gamma", "scale_layer") if k.startswith(E + "stages.") else k  # conette convnext.py:76-102
        if new != k:
            name_map[new] = k
        if new in tensors:
            raise ConvertError(f"{what}: both {k} and {new} present")
        tensors[new] = v
    if refused:
        print(f"convert: note: refused (not executed) pickled globals: {', '.join(sorted(refused))}",
              file=sys.stderr)
    dec_cfg = {"nhead": config.get("nhead", 8), "d_model": config.get("d_model"),
               "num_layers": config.get("num_decoder_layers"), "dim_feedforward": config.get("dim_feedforward"),
               "activation": config.get("acti_name", "gelu")}
    dec_cfg = {k: v for k, v in dec_cfg.items() if v is not None}
    hp, fe = infer_hparams(tensors, dec_cfg, what, "conette")
    task_names = list(config.get("task_names") or CONETTE_TASKS_DEFAULT) if config.get("task_mode", "ds_src") != "none" else []
    itos, where = conette_tokenizer(config, extra, what)
    itos = _itos_list(itos, hp["vocab_size"], what)
    check_tensors(tensors, hp, fe, len(task_names), what)
    ids = {s: itos.index(s) if s in itos else None for s in ("<pad>", "<bos>", "<eos>", "<unk>")}
    if None in ids.values():
        raise ConvertError(f"{what}: special tokens missing from the vocabulary: {ids}")
    if task_names:
        t2t = tensors["model.task_id_to_token_id"]
        for i, tname in enumerate(task_names):
            tok = int(t2t[i])
            if not 0 <= tok < hp["vocab_size"] or itos[tok] != f"<bos_{tname}>":
                raise ConvertError(f"{what}: task {tname} maps to token {tok}, which is not <bos_{tname}>")
    decoding = {"beam_size": int(config.get("beam_size", 3)), "min_pred_size": int(config.get("min_pred_size", 3)),
                "max_pred_size": int(config.get("max_pred_size", 20)), "forbid_rep_mode": "content_words",
                "pad_id": ids["<pad>"], "bos_id": ids["<bos>"], "eos_id": ids["<eos>"], "unk_id": ids["<unk>"],
                "task_names": task_names, "default_task": task_names[0] if task_names else None}
    tokenizer = {"kind": "conette_aac", "itos": itos, "source": where,
                 "post_decoding": ["clean_special_tokens", "clean_spaces_before_punctuation", "strip",
                                   "clean_double_spaces", "clean_hyphen_spaces", "lowercase"]}
    sources = [sha256_file(cfg_path), sha256_file(wpath)]
    return tensors, hp, fe, decoding, tokenizer, sources, name_map


def convert_dcase2024(ckpt: Path, tok_path: Path, enc_path: Path, name: str, nhead: int = 8):
    what = str(ckpt)
    obj, refused = load_weights(ckpt)
    sd = obj.get("state_dict") if isinstance(obj, dict) else None
    if not isinstance(sd, dict):
        raise ConvertError(f"{ckpt}: no 'state_dict' in the Lightning checkpoint")
    enc_obj, r2 = load_weights(enc_path)
    refused |= r2
    enc_sd = enc_obj.get("model", enc_obj) if isinstance(enc_obj, dict) else None
    if not isinstance(enc_sd, dict):
        raise ConvertError(f"{enc_path}: no 'model' state dict in the ConvNeXt checkpoint")
    tensors, name_map = {}, {}
    for k, v in enc_sd.items():
        new = E + (k.replace("gamma", "scale_layer") if k.startswith("stages.") else k)
        tensors[new], name_map[new] = v, f"{enc_path.name}:{k}"
    for k, v in sd.items():
        new = "model." + k
        tensors[new], name_map[new] = v, f"{ckpt.name}:{k}"
    for k, v in tensors.items():
        if not isinstance(v, np.ndarray):
            raise ConvertError(f"{what}: {name_map[k]} is not a tensor ({v!r}); refused: {sorted(refused)}")
    # The baseline's encoder checkpoint is the AudioSet model: its front end lives in the same state dict.
    # The checkpoint does not record the head count: TransDecoderModel builds AACTransformerDecoder with its
    # default, 8 (dcase2024-task6-baseline src/dcase24t6/models/trans_decoder.py:93-97, nn/decoders/aac_tfmer.py).
    hp, fe = infer_hparams(tensors, {"nhead": nhead}, what, "dcase2024")
    tj = json.loads(tok_path.read_text())
    vocab = (tj.get("model") or {}).get("vocab")
    if not isinstance(vocab, dict):
        raise ConvertError(f"{tok_path}: not a WordLevel tokenizer.json (no model.vocab)")
    itos = _itos_list({v: k for k, v in vocab.items()}, hp["vocab_size"], str(tok_path))
    check_tensors(tensors, hp, fe, 0, what)
    ids = {s: vocab.get(s) for s in ("<pad>", "<bos>", "<eos>", "<unk>")}
    if None in ids.values():
        raise ConvertError(f"{tok_path}: special tokens missing: {ids}")
    hparams = obj.get("hyper_parameters", {}) if isinstance(obj.get("hyper_parameters"), dict) else {}
    decoding = {"beam_size": int(hparams.get("beam_size", 3)), "min_pred_size": int(hparams.get("min_pred_size", 3)),
                "max_pred_size": int(hparams.get("max_pred_size", 20)), "forbid_rep_mode": "content_words",
                "pad_id": ids["<pad>"], "bos_id": ids["<bos>"], "eos_id": ids["<eos>"], "unk_id": ids["<unk>"],
                "task_names": [], "default_task": None}
    tokenizer = {"kind": "hf_wordlevel", "itos": itos, "source": tok_path.name,
                 "post_decoding": ["skip_special_tokens", "join_spaces"]}
    sources = [sha256_file(ckpt), sha256_file(tok_path), sha256_file(enc_path)]
    return tensors, hp, fe, decoding, tokenizer, sources, name_map


# ---------------------------------------------------------------------------------------------------------------
def write_model(out: Path, name: str, tensors, hp, fe, decoding, tokenizer, sources, name_map):
    from safetensors.numpy import save_file
    store = {}
    for k, v in tensors.items():
        # np.array(order="C") rather than ascontiguousarray, which turns 0-d tensors into shape (1,)
        dtype = np.bool_ if v.dtype == np.bool_ else np.int64 if v.dtype.kind in "iu" else np.float32
        store[k] = np.array(v, dtype=dtype, order="C")
    meta = {
        "format": "audiocap", "format_version": FORMAT_VERSION, "architecture": "cnext-trans", "model_name": name,
        "hparams": json.dumps(hp), "frontend": json.dumps(fe), "decoding": json.dumps(decoding),
        "tokenizer": json.dumps(tokenizer, ensure_ascii=False), "sources": json.dumps(sources),
        "converter": json.dumps({"tool": "tools/convert.py", "version": CONVERTER_VERSION, "name_map": name_map}),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    save_file(store, str(tmp), metadata=meta)
    tmp.replace(out)  # never leave a half-written model file under the final name


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--hf", type=Path, metavar="DIR", help="Hugging Face snapshot directory (CoNeTTE)")
    src.add_argument("--dcase2024", type=Path, metavar="CKPT", help="DCASE-2024 baseline Lightning checkpoint")
    ap.add_argument("--tokenizer", type=Path, help="tokenizer.json (with --dcase2024)")
    ap.add_argument("--encoder", type=Path, help="ConvNeXt checkpoint (with --dcase2024)")
    ap.add_argument("--nhead", type=int, default=8,
                    help="attention heads (with --dcase2024: not stored in its checkpoint; default 8, the baseline's)")
    ap.add_argument("--name", default=None, help="model name stored in the file (default: from the output name)")
    ap.add_argument("-o", "--output", type=Path, required=True, help="output .safetensors file")
    args = ap.parse_args(argv)
    name = args.name or args.output.stem
    try:
        if args.hf:
            parts = convert_hf(args.hf, name)
        else:
            if not args.tokenizer or not args.encoder:
                ap.error("--dcase2024 needs --tokenizer and --encoder")
            parts = convert_dcase2024(args.dcase2024, args.tokenizer, args.encoder, name, args.nhead)
        write_model(args.output, name, *parts)
    except ConvertError as e:
        print(f"convert: error: {e}", file=sys.stderr)
        return 1
    except (OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile, json.JSONDecodeError) as e:
        print(f"convert: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    tensors, hp = parts[0], parts[1]
    n = sum(int(v.size) for v in tensors.values())
    print(f"convert: wrote {args.output} ({len(tensors)} tensors, {n:,} values, vocabulary {hp['vocab_size']})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
