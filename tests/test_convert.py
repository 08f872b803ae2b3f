#!/usr/bin/env python3
"""tools/convert.py on checkpoints made by the upstream classes (tests/data/fixtures/tiny, tools/make_fixtures.py):
both Hugging Face layouts and the DCASE-2024 baseline layout convert to bit-identical tensors (SHA-256 against
torch's own bytes), metadata says what the model is, and every kind of bad input fails with a named reason
without writing an output file or executing pickled code.
usage: test_convert.py [WORKDIR]     (needs numpy + safetensors: tools/requirements-convert.txt)
"""
import contextlib
import hashlib
import io
import json
import os
import pickle
import shutil
import sys
import tempfile
import unittest
import zipfile
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import convert  # noqa: E402

FIX = ROOT / "tests" / "data" / "fixtures" / "tiny"
TENSORS = json.loads((FIX / "tensors.json").read_text())
SIZE = json.loads((FIX / "manifest.json").read_text())["size"]  # the architecture make_fixtures.py built
WORK = Path(tempfile.mkdtemp(prefix="test_convert_"))


def run(*args):
    """convert.main(args) -> (rc, stderr)"""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            rc = convert.main([str(a) for a in args])
        except SystemExit as e:
            rc = e.code
    return rc, err.getvalue()


def meta(path):
    with safe_open(str(path), "np") as f:
        return {k: (json.loads(v) if v[:1] in "[{" else v) for k, v in f.metadata().items()}


def sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def copy_variant(name):
    d = Path(tempfile.mkdtemp(dir=WORK))
    for f in (FIX / name).iterdir():
        shutil.copy(f, d / f.name)
    return d


class Convert(unittest.TestCase):
    def check_against_torch(self, out, skip=()):
        got = load_file(str(out))
        want = {k: v for k, v in TENSORS.items() if k not in skip}
        self.assertEqual(set(got), set(want))
        bad = [k for k in want if sha(got[k]) != want[k]["sha256"] or list(got[k].shape) != want[k]["shape"]]
        self.assertEqual(bad, [], "tensors differ from the upstream state_dict")
        return got

    def test_hf_bin_tokenizer_in_config(self):
        out = WORK / "bin.safetensors"
        rc, err = run("--hf", FIX / "hf_bin", "-o", out, "--name", "fixture-tiny")
        self.assertEqual(rc, 0, err)
        self.check_against_torch(out)
        m = meta(out)
        self.assertEqual((m["format"], m["format_version"], m["architecture"], m["model_name"]),
                         ("audiocap", "1", "cnext-trans", "fixture-tiny"))
        hp = m["hparams"]
        self.assertEqual(hp["encoder"]["dims"], SIZE["dims"])
        self.assertEqual(hp["encoder"]["depths"], SIZE["depths"])
        self.assertEqual((hp["decoder"]["d_model"], hp["decoder"]["nhead"], hp["decoder"]["num_layers"],
                          hp["decoder"]["dim_feedforward"], hp["vocab_size"]),
                         (SIZE["d_model"], SIZE["nhead"], SIZE["num_decoder_layers"], SIZE["dim_feedforward"], 71))
        self.assertEqual((m["frontend"]["n_fft"], m["frontend"]["n_mels"], m["frontend"]["hop"]),
                         (SIZE["n_fft"], SIZE["n_mels"], 320))
        tok = m["tokenizer"]
        self.assertEqual(len(tok["itos"]), 71)
        self.assertEqual(tok["itos"][:4], ["<pad>", "<bos>", "<eos>", "<unk>"])
        self.assertEqual(tok["source"], "config.json tokenizer_state")
        dec = m["decoding"]
        self.assertEqual(dec["task_names"][:2], ["clotho", "audiocaps"])
        self.assertEqual(dec["default_task"], "clotho")
        self.assertEqual((dec["beam_size"], dec["min_pred_size"], dec["max_pred_size"]), (3, 3, 20))
        t2t = load_file(str(out))["model.task_id_to_token_id"]
        self.assertEqual([tok["itos"][i] for i in t2t], [f"<bos_{t}>" for t in dec["task_names"]])
        self.assertEqual(m["converter"]["name_map"], {})
        src = {s["name"]: s for s in m["sources"]}
        self.assertEqual(src["pytorch_model.bin"]["sha256"],
                         hashlib.sha256((FIX / "hf_bin" / "pytorch_model.bin").read_bytes()).hexdigest())

    def test_hf_safetensors_tokenizer_in_extra_state_gamma_keys(self):
        out = WORK / "st.safetensors"
        rc, err = run("--hf", FIX / "hf_safetensors", "-o", out)
        self.assertEqual(rc, 0, err)
        self.check_against_torch(out)
        m = meta(out)
        self.assertEqual(m["model_name"], "st")
        self.assertEqual(m["tokenizer"]["source"], "_extra_state_")
        renamed = m["converter"]["name_map"]
        self.assertEqual(len(renamed), 4)
        self.assertTrue(all(v.endswith(".gamma") and k.endswith(".scale_layer") for k, v in renamed.items()))
        other = WORK / "bin2.safetensors"
        self.assertEqual(run("--hf", FIX / "hf_bin", "-o", other)[0], 0)
        self.assertEqual(meta(other)["tokenizer"]["itos"], m["tokenizer"]["itos"])

    def test_dcase2024_layout(self):
        d = FIX / "dcase2024"
        out = WORK / "dcase.safetensors"
        rc, err = run("--dcase2024", d / "best.ckpt", "--tokenizer", d / "tokenizer.json", "--encoder",
                      d / "convnext_tiny_fixture.pth", "--nhead", "2", "-o", out)
        self.assertEqual(rc, 0, err)
        self.check_against_torch(out, skip={"model.task_id_to_token_id"})
        m = meta(out)
        self.assertEqual(m["tokenizer"]["kind"], "hf_wordlevel")
        self.assertEqual(m["decoding"]["task_names"], [])
        self.assertIsNone(m["decoding"]["default_task"])
        self.assertEqual(m["hparams"]["encoder"]["frame_len_rule"], "dcase2024")
        self.assertEqual(m["hparams"]["decoder"]["nhead"], 2)
        self.assertEqual(len(m["sources"]), 3)
        self.assertEqual(m["converter"]["name_map"]["model.decoder.classifier.bias"], "best.ckpt:decoder.classifier.bias")

    # --- bad inputs: each fails with a named reason and writes nothing --------------------------------------
    def fails(self, args, *needles):
        out = WORK / "should_not_exist.safetensors"
        rc, err = run(*args, "-o", out)
        self.assertEqual(rc, 1, err)
        for n in needles:
            self.assertIn(n, err)
        self.assertFalse(out.exists())
        self.assertFalse(out.with_name(out.name + ".tmp").exists())
        return err

    def edited_safetensors(self, edit):
        d = copy_variant("hf_safetensors")
        t = load_file(str(d / "model.safetensors"))
        edit(t)
        save_file(t, str(d / "model.safetensors"))
        return d

    def test_missing_misshaped_unknown_all_named(self):
        def edit(t):
            del t["model.decoder.classifier.bias"]
            t["model.decoder.layers.1.norm2.weight"] = np.ones(7, np.float32)
            t["model.extra.weight"] = np.ones(3, np.float32)
        err = self.fails(["--hf", self.edited_safetensors(edit)], "3 tensor problem(s)",
                         "missing model.decoder.classifier.bias", "misshaped model.decoder.layers.1.norm2.weight",
                         "unknown tensor model.extra.weight")
        self.assertIn("[7]", err)

    def test_wrong_dtype(self):
        def edit(t):
            t["model.forbid_rep_mask"] = t["model.forbid_rep_mask"].astype(np.float32)
        self.fails(["--hf", self.edited_safetensors(edit)], "model.forbid_rep_mask has dtype float32")

    def test_vocabulary_mismatch(self):
        d = copy_variant("hf_bin")
        cfg = json.loads((d / "config.json").read_text())
        itos = cfg["tokenizer_state"]["tokenizer"]["itos"]
        itos.pop(str(len(itos) - 1))
        (d / "config.json").write_text(json.dumps(cfg))
        self.fails(["--hf", d], "the tokenizer has 70 tokens but the weights' vocabulary has 71")

    def test_no_tokenizer_anywhere(self):
        d = self.edited_safetensors(lambda t: t.pop("_extra_state_"))
        self.fails(["--hf", d], "no tokenizer")

    def test_pickled_code_is_refused_not_run(self):
        sentinel = WORK / "pwned"

        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {sentinel}",))

        d = copy_variant("hf_bin")
        with zipfile.ZipFile(d / "pytorch_model.bin", "w") as z:
            z.writestr("archive/data.pkl", pickle.dumps({"model.decoder.classifier.bias": Evil()}, protocol=2))
        err = self.fails(["--hf", d], "is not a tensor", "system")
        self.assertFalse(sentinel.exists(), "pickled code was executed")
        self.assertIn("refused", err)

    def test_not_a_checkpoint(self):
        d = copy_variant("hf_bin")
        (d / "pytorch_model.bin").write_bytes(os.urandom(4096))
        self.fails(["--hf", d], "not a PyTorch zip checkpoint")

    def test_truncated_checkpoint(self):
        d = copy_variant("hf_bin")
        raw = (d / "pytorch_model.bin").read_bytes()
        (d / "pytorch_model.bin").write_bytes(raw[: len(raw) // 2])
        self.fails(["--hf", d], "convert: error")

    def test_no_config(self):
        d = copy_variant("hf_bin")
        (d / "config.json").unlink()
        self.fails(["--hf", d], "no config.json")

    def test_wrong_task_mapping(self):
        def edit(t):
            t["model.task_id_to_token_id"] = t["model.task_id_to_token_id"][::-1].copy()
        self.fails(["--hf", self.edited_safetensors(edit)], "task clotho maps to token")


if __name__ == "__main__":
    res = unittest.main(exit=False, verbosity=1, argv=[sys.argv[0]]).result
    shutil.rmtree(WORK, ignore_errors=True)
    failed = len(res.failures) + len(res.errors)
    print(f"test_convert: {res.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
