#!/usr/bin/env python3
"""How often reduced-precision GEMM operands change a caption, predicted on the CPU: the upstream PyTorch CoNeTTE
(conette 0.3.1, the random full-size model tools/gpu-check makes: bench/gpu_ref.py --make-model) run twice on the
same clips, once in float32 and once with the operands of chosen GEMMs rounded as audiocap's CUDA engine rounds
them (products exact, float32 sums), and the two beam-3 captions compared. No GPU needed; issue #6 asks for >= 98 %
of BF16 captions identical to FP32 on a random-weight set, and this says before a GPU run which GEMMs decide it.

What can be rounded (each GEMM's activations and weights alike); the defaults are what the engine's BF16 mode
does since the commit after 988d77a (fp16 MLP operands, split products elsewhere):
  --mlp bf16|fp16|fp32      the ConvNeXt blocks' pwconv1/pwconv2 (the encoder's ~93 % of FLOPs)
  --down bf16|tf32|split|fp32  the three 2x2 downsample convolutions
  --dec bf16|tf32|split|fp32   every decoder linear (in_proj, out_proj, FFN, classifier, cross K/V), not the
                            768->256 projection of the frame embeddings (float32 in the engine)
  --frontend f32|same       f32 (the engine since 2026-11-28): the float32 arm's STFT, power and mel run in
                            float64, as the engine's FP32 mode computes them (kernels/logmel.h), the reduced arm's
                            in float32 (upstream's own, as the BF16 mode's fft32); same: both arms float32, as
                            before (the engine's BF16 front end was float64 then, like its FP32 one)
"split" is x_lo W_hi + x_hi W_lo + x_hi W_hi on bf16 halves (kernels/decoder_linear_kernel.cuh). tf32 keeps 10
significand bits (round to nearest). The depthwise convs, LayerNorms, attention and the stem stay float32, as in
the engine's BF16 mode. Tensor cores' own accumulation order is not modelled.

Clips: 10 s at 32 kHz, a tone (100 Hz - 9 kHz) plus noise of random level, seeded. One line per batch of 8 to
stderr, one JSON line at the end on stdout.
usage: refenv/bin/python bench/bf16_sim.py --model build-gpu/gpu-model [--clips 128] [--mlp fp16] [--down split]
                                           [--dec split] [--frontend f32]
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="folder made by bench/gpu_ref.py --make-model")
    ap.add_argument("--clips", type=int, default=128)
    ap.add_argument("--mlp", choices=["bf16", "fp16", "fp32"], default="fp16")
    ap.add_argument("--down", choices=["bf16", "tf32", "split", "fp32"], default="split")
    ap.add_argument("--dec", choices=["bf16", "tf32", "split", "fp32"], default="split")
    ap.add_argument("--frontend", choices=["f32", "same"], default="f32")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    gpu_ref.install_stand_ins()
    import torch
    import torch.nn.functional as F
    torch.set_grad_enabled(False)
    torch.set_num_threads(a.threads)
    model = gpu_ref.build("full", 2024, a.model)

    def bf16(t):
        return t.to(torch.bfloat16).float()

    def fp16(t):  # saturating at +-65504, as kernels/convnext_mlp_operand.cuh converts
        return t.clamp(-65504, 65504).to(torch.float16).float()

    def tf32(t):  # 10 significand bits, round half away from zero on the magnitude (NaN/Inf not expected)
        i = t.contiguous().view(torch.int32)
        return ((i + 0x1000) & ~0x1FFF).view(torch.float32)

    def product(kind, op, x, w, bias, **kw):
        """op(x, w) with both operands as the engine's `kind` sees them"""
        if kind == "split":
            xh, wh = bf16(x), bf16(w)
            return op(bf16(x - xh), wh, None, **kw) + op(xh, bf16(w - wh), None, **kw) + op(xh, wh, bias, **kw)
        r = {"bf16": bf16, "fp16": fp16, "tf32": tf32, "fp32": lambda t: t}[kind]
        return op(r(x), r(w), bias, **kw)

    state = {"sim": False, "where": None}  # where: "enc" or "dec" while the simulated pass runs
    enc = model.preprocessor.encoder
    for stage in enc.stages:
        for blk in stage:
            for lin in (blk.pwconv1, blk.pwconv2):
                def fwd(x, lin=lin):
                    if state["sim"]:
                        return product(a.mlp, F.linear, x, lin.weight, lin.bias)
                    return F.linear(x, lin.weight, lin.bias)
                lin.forward = fwd
    for i in (1, 2, 3):
        conv = enc.downsample_layers[i][1]

        def cf(x, conv=conv):
            if state["sim"]:
                return product(a.down, F.conv2d, x, conv.weight, conv.bias, stride=conv.stride)
            return F.conv2d(x, conv.weight, conv.bias, conv.stride)
        conv.forward = cf
    if a.frontend == "f32":  # the float32 arm's front end in float64 (its sums; one rounding at the log-mel)
        import copy
        spec, lmel = enc.spectrogram_extractor, enc.logmel_extractor
        spec64, lmel64 = copy.deepcopy(spec).double(), copy.deepcopy(lmel).double()
        spec_fwd, lmel_fwd = spec.forward, lmel.forward
        spec.forward = lambda x: spec_fwd(x) if state["sim"] else spec64(x.double())
        lmel.forward = lambda x: lmel_fwd(x) if x.dtype != torch.float64 else lmel64(x).float()
    plain_linear = F.linear

    def dec_linear(x, w, b=None):  # nn.MultiheadAttention calls F.linear too: patch the function itself
        if state["sim"] and state["where"] == "dec" and tuple(w.shape) != (256, 768):
            return product(a.dec, plain_linear, x, w, b)
        return plain_linear(x, w, b)
    F.linear = dec_linear

    same = total = 0
    worst_rel = 0.0
    t0 = time.time()
    n = 10 * 32000
    t = torch.arange(n) / 32000
    for b0 in range(0, a.clips, 8):
        B = min(8, a.clips - b0)
        g = torch.Generator().manual_seed(100 + b0)
        f = 100 * torch.exp(torch.rand(B, 1, generator=g) * 4.5)
        level = 0.3 * torch.rand(B, 1, generator=g) * torch.rand(B, 1, generator=g)
        x = (level * torch.randn(B, n, generator=g) + 0.3 * torch.sin(2 * math.pi * f * t)).clamp(-1, 1)[:, None, :]
        caps, embs = [], []
        for sim in (False, True):
            state.update(sim=sim, where="enc")
            batch = model.preprocessor(x, 32000)
            state["where"] = "dec"
            out = model(batch["audio"].float(), x_shapes=batch["audio_shape"], preprocess=False, beam_size=3)
            state.update(sim=False, where=None)
            caps.append(out["cands"])
            embs.append(batch["audio"].float())
        rel = ((embs[1] - embs[0]).norm() / embs[0].norm()).item()
        worst_rel = max(worst_rel, rel)
        for c32, csim in zip(*caps):
            total += 1
            same += c32 == csim
        print(f"bf16_sim: {total} clips, {same} identical ({100 * same / total:.1f} %), frame_embs rel err {rel:.3g}, "
              f"{time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    print(json.dumps({"bench": "bf16_sim", "clips": total, "mlp": a.mlp, "down": a.down, "dec": a.dec,
                      "frontend": a.frontend,
                      "identical": same, "share_identical": round(same / total, 4),
                      "frame_embs_rel_err_max": round(worst_rel, 6), "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
