#!/usr/bin/env python3
"""bench/gpu_table.py, the table tools/gpu-check prints last, on made-up results: the speed-up lines pair the
right rows, a malformed line is skipped, and the defaults check flips a default only when an alternative measured
in the same run beats it by more than 5 %. A GPU session has minutes to read this table; a wrong line there
becomes a wrong default in the next commit.
usage: test_gpu_table.py
"""
import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "bench" / "gpu_table.py"


def table(rows, steps=()):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d)
        (p / "results.jsonl").write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
        (p / "steps.tsv").write_text("".join("\t".join(s) + "\n" for s in steps))
        out = subprocess.run([sys.executable, str(TABLE), d, "--commit", "abc1234"], check=True,
                             capture_output=True, text=True).stdout
    return out.splitlines()


def mlp(path, auto, c, ms):
    return {"bench": "gpu_convnext_mlp", "precision": "bf16", "path": path, "auto": auto, "C": c, "N": 1000000,
            "ms": ms, "tflops": 1.0, "gbytes_per_s": 1.0, "clips_per_s": 1.0, "reps": 3}


def caption(bench, graph, tile, decoder_ms):
    return {"bench": bench, "precision": "bf16", "beam": 3, "batch": 256, "clips_per_s": 800.0, "encoder_ms": 280.0,
            "decoder_ms": decoder_ms, "steps": 20.0, "graph": graph, "linear_tile": tile, "device": "x"}


def line_with(lines, text):
    found = [x for x in lines if text in x]
    if len(found) != 1:
        raise AssertionError(f"{len(found)} lines with {text!r} in:\n" + "\n".join(lines))
    return found[0]


class GpuTable(unittest.TestCase):
    def test_speedup_pairs_and_bad_lines(self):
        lines = table([{"bench": "gpu_encoder_resident", "precision": "bf16", "batch": 256, "clips_per_s": 3000.0},
                       {"bench": "gpu_encoder_resident", "precision": "bf16", "batch": 512, "clips_per_s": 2800.0},
                       {"bench": "torch_encoder", "precision": "bf16", "batch": 512, "clips_per_s": 1500.0},
                       "not json {", '["a list"]'],
                      steps=[("build", "ok", "40", ""), ("tests", "failed", "12", "1 failed")])
        self.assertIn("commit abc1234", lines[0])
        self.assertIn("<<<", line_with(lines, "tests    "))
        self.assertIn("= 2.00x", line_with(lines, "like for like) bf16"))
        self.assertIn("1 step(s) failed: tests", lines[-1])

    def test_defaults_keep_and_flip(self):
        lines = table([mlp("mma", True, 96, 2.0), mlp("wmma", False, 96, 2.05),  # 2.5 % apart: noise, keep
                       mlp("split", True, 384, 15.0), mlp("unfused", False, 384, 12.2),
                       {"bench": "gpu_linear", "M": 768, "K": 256, "N": 256, "gelu": 0, "tile": "64", "us": 20.0},
                       {"bench": "gpu_linear", "M": 768, "K": 256, "N": 256, "gelu": 0, "tile": "auto", "us": 12.0},
                       {"bench": "gpu_linear", "M": 768, "K": 256, "N": 256, "gelu": 0, "product": "bf16",
                        "tile": "auto", "us": 8.0},
                       caption("gpu_caption", 1, "auto", 36.0), caption("gpu_caption", 0, "auto", 24.0),
                       caption("gpu_caption_resident", 1, "auto", 30.0),
                       caption("gpu_caption_resident", 1, "64", 33.0),
                       dict(caption("gpu_caption_resident", 1, "auto", 27.0), linear_ln="two launches"),
                       {"bench": "gpu_linear_ln", "M": 768, "K": 2048, "N": 256, "path": "split-K", "default": True,
                        "us": 9.0},
                       {"bench": "gpu_linear_ln", "M": 768, "K": 2048, "N": 256, "path": "two launches",
                        "default": False, "us": 12.0},
                       {"bench": "gpu_encoder_profile", "mlp": "auto", "stft": "fft32", "us_per_clip": 300.0,
                        "front end": "20.0 us (7 %)"},
                       {"bench": "gpu_encoder_profile", "mlp": "auto", "stft": "fft", "us_per_clip": 310.0,
                        "front end": "30.0 us (10 %)"},
                       {"bench": "gpu_encoder_profile", "mlp": "auto", "stft": "gemm", "us_per_clip": 330.0,
                        "front end": "50.0 us (15 %)"},
                       {"bench": "gpu_encoder_profile", "mlp": "unfused", "stft": "fft32", "us_per_clip": 290.0,
                        "front end": "20.0 us (7 %)"},
                       {"bench": "gpu_bf16_agreement", "stft_bf16": "fft32", "share_identical": 0.975},
                       {"bench": "gpu_bf16_agreement", "stft_bf16": "fft", "share_identical": 0.99},
                       {"bench": "gpu_kv_reorder", "mode": "indirection", "us_per_step": 40.0},
                       {"bench": "gpu_kv_reorder", "mode": "gather", "us_per_step": 90.0},
                       {"bench": "bulk_caption", "format": "wav", "workers": 1, "files_per_s": 700.0},
                       {"bench": "bulk_caption", "format": "wav", "workers": 2, "files_per_s": 600.0}])
        self.assertTrue(line_with(lines, "MLP bf16 C 96 ").endswith(": keep"))
        self.assertIn("flip to unfused (23 % better)", line_with(lines, "MLP bf16 C 384 "))
        self.assertTrue(line_with(lines, "linear M 768 K 256 N 256 (us)").endswith(": keep"))
        self.assertIn("split product costs 50 %", line_with(lines, "split product costs"))
        self.assertIn("bf16 auto 8.0", line_with(lines, "  M 768 K 256 N 256:"))
        # graphs are the default (graph 1): plain launches 50 % faster is a flip to off
        self.assertIn("default on 36.00, off 24.00: flip to off (50 % better)",
                      line_with(lines, "CUDA graphs, gpu_caption bf16"))
        self.assertTrue(line_with(lines, "linear tile, gpu_caption_resident").endswith(": keep"))
        # the unfused run (27 ms) must not become the resident baseline (30 ms), and beats it by 11 %: flip
        self.assertIn("default fused/split-K 30.00, two launches 27.00: flip",
                      line_with(lines, "linear + LayerNorm, gpu_caption_"))
        self.assertIn("default split-K 9.00, best other two launches 12.00: keep",
                      line_with(lines, "linear + LayerNorm M 768 K 2048 (us)"))
        self.assertIn("split-K 9.0, two launches 12.0", line_with(lines, "M 768 K 2048 N 256 + LayerNorm"))
        self.assertTrue(line_with(lines, "STFT, bf16 front end").endswith(": keep"))
        self.assertIn("default fft32 20.00, best other fft 30.00", line_with(lines, "STFT, bf16 front end"))
        self.assertTrue(line_with(lines, "caption agreement").endswith("fft (double) 0.9900; flip to fft"))
        # 300 against 290: 3.4 %, inside the noise
        self.assertTrue(line_with(lines, "MLP paths in the whole encoder").endswith(": keep"))
        self.assertIn("default indirection 40.00, best other gather 90.00: keep",
                      line_with(lines, "KV cache reorder"))
        # higher is better for files/s
        self.assertIn("flip to 1 (17 % better)", line_with(lines, "workers per GPU"))

    def test_workers_rows(self):
        # two workers on one GPU: a row of its own (not the resident "best"), no speed-up pair, and the verdict
        # against one worker at batch 256; its default (graphs) / tile auto run must not be taken as the graphs'
        # one-worker baseline
        two = dict(caption("gpu_caption_resident", 1, "auto", 40.0), workers=2, clips_per_s=1200.0, calls=10,
                   graph_calls=9, graph_fallbacks=1)
        one = dict(caption("gpu_caption_resident", 1, "auto", 30.0), workers=1)
        lines = table([one, two, caption("gpu_caption_resident", 0, "auto", 20.0),
                       {"bench": "torch_caption", "precision": "bf16", "batch": 256, "clips_per_s": 100.0}])
        self.assertIn("1,200.0", line_with(lines, "audiocap captioning, 2 workers"))
        self.assertIn("800.0", line_with(lines, "audiocap captioning, PCM on GPU "))
        self.assertIn("= 8.00x", line_with(lines, "like for like) bf16"))
        # the CLI runs two workers per GPU by default: two ahead is a keep
        self.assertTrue(line_with(lines, "workers per GPU, resident").endswith(": keep"))
        self.assertIn("default on 30.00, off 20.00", line_with(lines, "CUDA graphs, gpu_caption_resident bf16"))
        # two workers without graphs: their own verdict against two workers with them (the default), with the
        # graphs' replay counts; not the baseline of the workers' verdict (the engine row shows the best run,
        # labelled "graph 0")
        two_off = dict(caption("gpu_caption_resident", 0, "auto", 25.0), workers=2, clips_per_s=1500.0)
        lines = table([one, two_off, two, caption("gpu_caption_resident", 0, "auto", 20.0)])
        self.assertIn("default 2 1,200.00", line_with(lines, "workers per GPU, resident"))
        g = line_with(lines, "CUDA graphs with 2 workers")
        self.assertIn("default on 1,200.00, off 1,500.00: flip to off (25 % better)", g)
        # a flip names where its default is set, on the next line; a keep does not
        i = lines.index(g)
        self.assertTrue(lines[i + 1].strip().startswith("-> kernels/gpu_decoder.cu graphs_wanted"), lines[i + 1])
        w = lines.index(line_with(lines, "workers per GPU, resident"))
        self.assertFalse(lines[w + 1].strip().startswith("->"), lines[w + 1])
        self.assertTrue(g.endswith("(9 of 10 calls replayed graphs, 1 fell back)"), g)

    def test_no_alternatives_no_section(self):
        lines = table([mlp("mma", True, 96, 2.0)])
        self.assertIn("no alternative measured", line_with(lines, "MLP bf16 C 96"))
        self.assertFalse(any("Defaults against" in x for x in table([])))


if __name__ == "__main__":
    unittest.main(verbosity=2)
