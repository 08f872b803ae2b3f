#!/usr/bin/env python3
"""The short table tools/gpu-check prints last: the machine (GPU, driver, commit), each step's status, the GPU tests,
the two ceilings (bench_gpu_gemm_peak) and the best clips/s of each engine and precision, with audiocap's speed-up
over the upstream PyTorch code measured in the same run. Reads OUTDIR/steps.tsv (name, status, seconds, note) and
OUTDIR/results.jsonl (the benchmarks' JSON lines); standard library only.
usage: gpu_table.py OUTDIR [--commit C] [--gpu "name, driver, memory, clock"] [--elapsed S]
"""
import argparse
import json
import time
from pathlib import Path

# (bench, what it is) for the clips/s rows, ours first; pairs give the speed-up lines
ENGINE_ROWS = [("gpu_encoder", "audiocap encoder"), ("gpu_encoder_resident", "audiocap encoder, PCM on GPU"),
               ("torch_encoder", "PyTorch encoder"),
               ("gpu_caption", "audiocap captioning"), ("gpu_caption_resident", "audiocap captioning, PCM on GPU"),
               ("gpu_caption_resident_x2", "audiocap captioning, 2 workers"),
               ("torch_caption", "PyTorch captioning")]
# PyTorch's clips sit on the GPU; "gpu_encoder"/"gpu_caption" stage and upload host PCM every call (production),
# the resident runs do not (the issues' definition): both ratios are printed, the resident one is like for like.
# Runs of several workers on one GPU (bench_gpu_caption --workers N: the CLI's default of two) are rows of their
# own, "<bench>_xN", and pair with nothing: PyTorch ran one process.
PAIRS = [("encoder (host PCM)", "gpu_encoder", "torch_encoder"),
         ("encoder (PCM on the GPU, like for like)", "gpu_encoder_resident", "torch_encoder"),
         ("captioning (host PCM)", "gpu_caption", "torch_caption"),
         ("captioning (PCM on the GPU, like for like)", "gpu_caption_resident", "torch_caption")]


def fmt(v, digits=1):
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def verdict(default_name, default_t, alts, lower_is_better=True):
    """'keep' or 'flip to X (n % better)' for a default measured beside its alternatives ({name: value})."""
    if not alts:
        return f"{default_name}: no alternative measured"
    name, t = (min if lower_is_better else max)(alts.items(), key=lambda kv: kv[1])
    gain = (default_t / t - 1) if lower_is_better else (t / default_t - 1)
    if gain > 0.05:  # this run's noise between repeats is a few per cent: below 5 % is not a reason to change
        return f"default {default_name} {default_t:,.2f}, {name} {t:,.2f}: flip to {name} ({100 * gain:.0f} % better)"
    return f"default {default_name} {default_t:,.2f}, best other {name} {t:,.2f}: keep"


# Where each default the verdicts judge is set (by the verdict line's start), printed under a "flip" so that the
# session reading the table goes straight to the line to change (and to the env var that forced the alternative)
DEFAULT_HOMES = [
    ("MLP paths in the whole encoder", "kernels/convnext_mlp.cu ac_convnext_mlp_choose (AC_MLP_PATH)"),
    ("MLP ", "kernels/convnext_mlp.cu ac_convnext_mlp_choose (AC_MLP_PATH)"),
    ("linear + LayerNorm", "kernels/decoder_linear.cu ac_gpu_linear_add_ln_path (AC_LINEAR_LN)"),
    ("linear tile", "kernels/decoder_linear.cu bf16_tile (AC_LINEAR_TILE)"),
    ("linear M", "kernels/decoder_linear.cu bf16_tile (AC_LINEAR_TILE)"),
    ("KV cache reorder", "kernels/gpu_decoder.cu enqueue_step: ac_gpu_gather_rows of anc -> ac_gpu_kv_cache_gather"),
    ("CUDA graphs", "kernels/gpu_decoder.cu graphs_wanted (AC_GPU_GRAPH; bench_gpu_caption's graph field, "
                    "gpu-check's comparison run)"),
    ("STFT", "kernels/gpu_encoder.cu ac_gpu_stft_method (AC_STFT)"),
    ("bf16 front end and caption agreement", "kernels/gpu_encoder.cu ac_gpu_stft_method (AC_STFT)"),
    ("workers per GPU", "host/cli_caption.c GPU_WORKERS"),
]


# the decoder's CUDA graphs: on by default since 2026-11-29 (bench_gpu_caption's "graph" field: 1 = graphs)
DEFAULT_GRAPH = 1
GRAPH_NAMES = {0: "off", 1: "on"}


def with_homes(lines):
    """lines, each verdict that says "flip" followed by where its default is set"""
    out = []
    for line in lines:
        out.append(line)
        if "flip to" in line:
            home = next((h for start, h in DEFAULT_HOMES if line.strip().startswith(start)), None)
            if home:
                out.append(f"    -> {home}")
    return out


def engine(r):
    """a clips/s row's engine: its bench, "_xN" added for N workers on one GPU"""
    w = r.get("workers", 1)
    return f"{r['bench']}_x{w}" if isinstance(w, int) and w > 1 else r["bench"]


def lnf_rows(rows):
    """{(M, K): {path: us}} from bench_gpu_linear's linear + LayerNorm lines, the default path under "default"
    as well"""
    t = {}
    for r in rows:
        if r["bench"] == "gpu_linear_ln" and "us" in r:
            d = t.setdefault((r["M"], r["K"]), {})
            d[r.get("path")] = float(r["us"])
            if r.get("default", r.get("path") == "fused"):
                d["default"] = float(r["us"])
    return t


def linear_shapes(rows):
    """{(M, K, N): {tile or "bf16 <tile>": us}} from bench_gpu_linear's lines (no "product": the split-less kernel
    of commits before the split product, named by its tile)."""
    shapes = {}
    for r in rows:
        if r["bench"] == "gpu_linear":
            name = r["tile"] if r.get("product", "split") == "split" else f"bf16 {r['tile']}"
            shapes.setdefault((r["M"], r["K"], r["N"]), {})[name] = float(r["us"])
    return shapes


def defaults_check(rows):
    """The defaults chosen without a GPU, each set beside what this run measured for its alternatives, so that the
    session reading the table knows which to change: MLP path per width, decoder linear tile per shape, the linear +
    LayerNorm fusion, the KV cache's reorder (indirection or gather), CUDA graphs for decoding, the STFT method
    (and its share of the BF16 caption agreement), the MLP paths in the whole encoder, workers per GPU (bulk runs
    and captioning)."""
    lines = []
    by_c = {}
    for r in rows:
        if r["bench"] == "gpu_convnext_mlp" and "ms" in r:
            by_c.setdefault((r.get("precision"), r.get("C")), []).append(r)
    for (prec, c), rs in sorted(by_c.items(), key=lambda kv: (str(kv[0][0]), kv[0][1] or 0)):
        d = [r for r in rs if r.get("auto") is True]
        if d:
            alts = {r["path"]: float(r["ms"]) for r in rs if r is not d[0]}
            lines.append(f"  MLP {prec} C {c} (ms): " + verdict(d[0]["path"], float(d[0]["ms"]), alts))
    for (m, k, n), t in linear_shapes(rows).items():
        if "auto" in t:
            alts = {f"tile {name}": t[name] for name in ("64", "32") if name in t}
            lines.append(f"  linear M {m} K {k} N {n} (us): " + verdict("auto", t["auto"], alts))
            if "bf16 auto" in t:  # not a flip: the split is for the captions (bf16 agreement), this is its price
                lines.append(f"    split product costs {100 * (t['auto'] / t['bf16 auto'] - 1):.0f} % over plain bf16 "
                             f"({t['auto']:.1f} vs {t['bf16 auto']:.1f} us)")
    for (m, k), t in sorted(lnf_rows(rows).items()):
        if "default" in t:
            name = next((p for p, v in t.items() if p != "default" and v == t["default"]), "default")
            alts = {p: v for p, v in t.items() if p not in ("default", name)}
            lines.append(f"  linear + LayerNorm M {m} K {k} (us): " + verdict(name, t["default"], alts))
    kv = {r.get("mode"): float(r["us_per_step"]) for r in rows if r["bench"] == "gpu_kv_reorder" and "us_per_step" in r}
    if "indirection" in kv and "gather" in kv:  # issue #6: the decoder's cache indirection against a gathered cache
        lines.append("  KV cache reorder, attention + reorder (us per step): "
                     + verdict("indirection", kv["indirection"], {"gather": kv["gather"]}))
    allcap = [r for r in rows if r["bench"] in ("gpu_caption", "gpu_caption_resident") and "decoder_ms" in r]
    cap = [r for r in allcap if r.get("workers", 1) == 1]  # graphs and tiles compared on one worker's runs
    G = DEFAULT_GRAPH
    for bench in ("gpu_caption", "gpu_caption_resident"):
        for prec in ("bf16", "fp32"):
            base = [r for r in cap if r["bench"] == bench and r.get("precision") == prec and r.get("graph") == G
                    and r.get("linear_tile") == "auto" and r.get("linear_ln", "default") in ("default", "fused")
                    and r.get("batch") == 256]
            if not base:
                continue
            b = base[0]
            g = [r for r in cap if r["bench"] == bench and r.get("precision") == prec and r.get("graph") == 1 - G
                 and r.get("batch") == 256]
            if g:
                lines.append(f"  CUDA graphs, {bench} {prec} batch 256 (decoder ms): "
                             + verdict(GRAPH_NAMES[G], float(b["decoder_ms"]),
                                       {GRAPH_NAMES[1 - G]: float(g[0]["decoder_ms"])}))
            u = [r for r in cap if r["bench"] == bench and r.get("precision") == prec and r.get("graph") == G
                 and r.get("linear_ln") in ("two launches", "unfused") and r.get("batch") == 256]
            if u:
                lines.append(f"  linear + LayerNorm, {bench} {prec} batch 256 (decoder ms): "
                             + verdict("fused/split-K", float(b["decoder_ms"]), {"two launches": float(u[0]["decoder_ms"])}))
            t = [r for r in cap if r["bench"] == bench and r.get("precision") == prec and r.get("graph") == G
                 and r.get("linear_tile") == "64" and r.get("batch") == 256]
            if t:
                lines.append(f"  linear tile, {bench} {prec} batch 256 (decoder ms): "
                             + verdict("auto", float(b["decoder_ms"]), {"64 everywhere": float(t[0]["decoder_ms"])}))
    one = [r for r in cap if r["bench"] == "gpu_caption_resident" and r.get("precision") == "bf16"
           and r.get("workers", 1) == 1 and r.get("graph") == G and r.get("linear_tile") == "auto"
           and r.get("batch") == 256]

    def two_workers(graph):
        return [r for r in allcap if r["bench"] == "gpu_caption_resident" and r.get("precision") == "bf16"
                and r.get("workers") == 2 and r.get("batch") == 256 and r.get("graph") == graph]
    two, two_alt = two_workers(G), two_workers(1 - G)
    if one and two:
        lines.append("  workers per GPU, resident bf16 batch 256 (clips/s): "
                     + verdict("2", float(two[0]["clips_per_s"]), {"1": float(one[0]["clips_per_s"])}, False))
    # CUDA graphs while another worker shares the GPU: its device-wide synchronisations can invalidate a capture,
    # which then falls back to plain launches (kernels/gpu_decoder.cu); the counts (of the graphs' run) say how often
    if two and two_alt:
        g = (two if G else two_alt)[0]
        lines.append("  CUDA graphs with 2 workers, resident bf16 batch 256 (clips/s): "
                     + verdict(GRAPH_NAMES[G], float(two[0]["clips_per_s"]),
                               {GRAPH_NAMES[1 - G]: float(two_alt[0]["clips_per_s"])}, False)
                     + f" ({g.get('graph_calls', '?')} of {g.get('calls', '?')} calls replayed graphs, "
                     f"{g.get('graph_fallbacks', '?')} fell back)")
    prof = {(r.get("mlp"), r.get("stft", "fft")): r for r in rows if r["bench"] == "gpu_encoder_profile"}

    def front_us(r):
        v = r.get("front end", "")
        try:
            return float(str(v).split()[0])
        except (ValueError, IndexError):
            return None
    # bf16's default front end: fft32 since 2026-11-28 (runs before it profiled fft as the default)
    d_stft = "fft32" if ("auto", "fft32") in prof else "fft"
    if ("auto", d_stft) in prof:
        f = front_us(prof[("auto", d_stft)])
        alts = {s: front_us(prof[("auto", s)]) for s in ("fft32", "fft", "gemm") if ("auto", s) in prof}
        alts = {k: v for k, v in alts.items() if v is not None and k != d_stft}
        if f is not None and alts:
            lines.append("  STFT, bf16 front end (us per clip): " + verdict(d_stft, f, alts))
    if ("auto", d_stft) in prof and ("unfused", d_stft) in prof:
        lines.append("  MLP paths in the whole encoder (us per clip): "
                     + verdict("auto", float(prof[("auto", d_stft)]["us_per_clip"]),
                               {"cuBLAS everywhere": float(prof[("unfused", d_stft)]["us_per_clip"])}))
    # the agreement bench reruns with AC_STFT=fft when the default misses 98 %: the float32 front end's share
    agree = {r.get("stft_bf16"): float(r["share_identical"]) for r in rows
             if r["bench"] == "gpu_bf16_agreement" and "share_identical" in r}
    if "fft32" in agree and "fft" in agree:
        lines.append(f"  bf16 front end and caption agreement (share identical to fp32, target 0.98): fft32 "
                     f"{agree['fft32']:.4f}, fft (double) {agree['fft']:.4f}"
                     + ("; flip to fft" if agree["fft"] >= 0.98 > agree["fft32"] else ""))
    bulk = {r.get("workers"): float(r["files_per_s"]) for r in rows
            if r["bench"] == "bulk_caption" and r.get("format") == "wav" and "files_per_s" in r}
    if 2 in bulk and 1 in bulk:
        lines.append("  workers per GPU, WAV bulk run (files/s): " + verdict("2", bulk[2], {"1": bulk[1]}, False))
    return (["", "Defaults against what this run measured (a flip is a change for the next commit):"] + with_homes(lines)
            if lines else [])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--gpu", default="")
    ap.add_argument("--elapsed", default="")
    a = ap.parse_args()

    steps = []
    p = a.outdir / "steps.tsv"
    if p.exists():
        for line in p.read_text().splitlines():
            f = line.split("\t") + ["", "", "", ""]
            steps.append(f[:4])
    rows = []
    p = a.outdir / "results.jsonl"
    if p.exists():
        for line in p.read_text().splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if isinstance(r, dict) and "bench" in r:
                rows.append(r)

    gpu = a.gpu.strip() or "no GPU seen by nvidia-smi"
    out = [f"gpu-check {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} | commit {a.commit} | {gpu}"
           + (f" | {a.elapsed} s" if a.elapsed else "")]
    out.append("")
    out.append(f"{'step':<20} {'status':<8} {'s':>5}  note")
    for name, status, sec, note in steps:
        mark = "" if status in ("ok", "skipped") else "  <<<"
        out.append(f"{name:<20} {status:<8} {sec:>5}  {note}{mark}")

    for r in rows:
        if r["bench"] == "gpu_tests":
            line = f"GPU tests: {r.get('passed', 0)} passed, {r.get('failed', 0)} failed, {r.get('skipped', 0)} skipped"
            if r.get("failed_tests"):
                line += " (failed: " + ", ".join(r["failed_tests"]) + ")"
            out += ["", line]

    peaks = [r for r in rows if r["bench"] == "gpu_gemm_peak"]
    copy = [r for r in rows if r["bench"] == "gpu_copy_peak"]
    pcie = [r for r in rows if r["bench"] == "gpu_pcie_peak"]
    if peaks or copy or pcie:
        parts = [f"{r['precision']} GEMM {r.get('m')}^3 {fmt(float(r['tflops']))} TFLOP/s" for r in peaks]
        parts += [f"D2D copy {fmt(float(r['gbytes_per_s']), 0)} GB/s" for r in copy]
        out += ["", "ceilings: " + "; ".join(parts)]
        if pcie:
            out.append("PCIe: " + "; ".join(f"{r['direction'].upper()} {r['host']} {fmt(float(r['gbytes_per_s']))} GB/s"
                                            for r in pcie))

    bf16_peak = max((float(r["tflops"]) for r in peaks if r.get("precision") == "bf16"), default=0)
    copy_peak = max((float(r["gbytes_per_s"]) for r in copy), default=0)
    best = {}
    for r in rows:
        if "clips_per_s" not in r:
            continue
        key = (engine(r), r.get("precision", "?"))
        if key not in best or float(r["clips_per_s"]) > float(best[key]["clips_per_s"]):
            best[key] = r
    if best:
        out += ["", f"{'engine':<30} {'precision':<9} {'best batch':>10} {'clips/s':>12}  detail"]
        known = [b for b, _ in ENGINE_ROWS]
        order = ENGINE_ROWS + sorted({(b, b) for b, _ in best if b not in known})
        for bench, label in order:
            for (b, prec), r in sorted(best.items()):
                if b != bench:
                    continue
                detail = []
                for k in ("ms_per_batch", "encoder_ms", "decoder_ms", "decoder_enqueue_ms", "tflops", "gbytes_per_s", "steps", "peak_mem_gib",
                          "graph", "linear_tile", "mlp"):
                    if k in r:
                        detail.append(f"{k} {fmt(r[k], 2) if isinstance(r[k], float) else r[k]}")
                if "tflops" in r and bf16_peak:  # issue #5: the share of the bf16 GEMM peak measured in this run
                    detail.append(f"{100 * float(r['tflops']) / bf16_peak:.1f} % of bf16 peak")
                if "gbytes_per_s" in r and copy_peak:
                    detail.append(f"{100 * float(r['gbytes_per_s']) / copy_peak:.0f} % of copy bw")
                out.append(f"{label:<30} {prec:<9} {str(r.get('batch', '')):>10} {fmt(float(r['clips_per_s'])):>12}  "
                           + ", ".join(detail))
        for what, ours, ref in PAIRS:
            for prec in sorted({p for b, p in best if b == ours}):
                if (ref, prec) in best:
                    s = float(best[(ours, prec)]["clips_per_s"]) / float(best[(ref, prec)]["clips_per_s"])
                    out.append(f"speed-up, {what} {prec}: audiocap / PyTorch = {s:.2f}x (best batch each)")

    mlp = [r for r in rows if r["bench"] == "gpu_convnext_mlp"]
    if mlp:
        out += ["", "ConvNeXt MLP blocks (bench_gpu_convnext_mlp):"]
        for r in mlp[:24]:
            fields = [f"{k} {r[k]}" for k in r if k not in ("bench", "device")]
            out.append("  " + ", ".join(fields))
    lin = [r for r in rows if r["bench"] == "gpu_linear"]
    if lin:  # one line per shape: us per call for each tile of the split product, the plain bf16 product last
        out += ["", "Decoder linears (bench_gpu_linear; us per call: split product by tile, then plain bf16):"]
        for (m, k, n), t in linear_shapes(rows).items():
            out.append(f"  M {m} K {k} N {n}: " + ", ".join(f"{name} {t[name]:.1f}" for name in
                                                             ("64", "32", "auto", "bf16 auto") if name in t))
        for (m, k), t in sorted(lnf_rows(rows).items()):
            out.append(f"  M {m} K {k} N 256 + LayerNorm: " + ", ".join(f"{p} {v:.1f}" for p, v in t.items()
                                                                       if p != "default"))
    ncu = [r for r in rows if r["bench"] == "ncu_kernel"]
    if ncu:
        out += ["", "Per kernel (Nsight Compute, batch 64; % of the program's kernel time, SM / memory throughput, "
                "warps active):"]
        for r in ncu[:16]:
            out.append(f"  {r['program']:8} {r['share_pct']:5.1f}% {r['us_per_call']:8.1f} us x{r['calls']:<4} "
                       f"SM {r['sm_pct']:5.1f} mem {r['mem_pct']:5.1f} warps {r['warps_pct']:5.1f}  {r['kernel']}")
    other = [r for r in rows if r["bench"] not in {"gpu_tests", "gpu_gemm_peak", "gpu_copy_peak", "gpu_pcie_peak",
                                                   "gpu_convnext_mlp", "gpu_linear", "gpu_linear_ln", "ncu_kernel"}
             and "clips_per_s" not in r]
    for r in other[:24]:  # bulk (gather, decode, check, caption), profiles, agreement: ~14 lines in a full run
        if "error" in r:
            out.append(f"  error: {r['bench']} {r.get('precision', '')} batch {r.get('batch', '')}: {r['error']}")
        else:
            out.append("  " + ", ".join(f"{k} {r[k]}" for k in r if k != "device"))
    out += defaults_check(rows)
    failed = [s for s in steps if s[1] not in ("ok", "skipped")]
    out += ["", f"gpu-check: {len(failed)} step(s) failed" + (": " + ", ".join(s[0] for s in failed) if failed else "")]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
