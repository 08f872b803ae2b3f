// Encoder orchestration on the device (see gpu_encoder.h). Mirrors ac_model_encode (host/model.c) for a packed
// batch; shapes and frame lengths come from kernels/encoder_plan.h. Layouts, per stage s of the plan:
// clip k's frames at rows [off[s][k], off[s][k+1]) of a (frames, F_s) grid, tokens (frames * F_s, C_s) fp32.
// Upstream: conette nn/encoders/convnext.py:144-180 (front end), 207-217 (stem, downsamples), 22-74 (blocks),
// 283-315 (forward, frame embeddings), pl_modules/common.py:59-78 (projection).
#include "common.cuh"
#include "convnext_mlp.h"
#include "decoder_linear.h"
#include "downsample.h"
#include "dwconv_ln.h"
#include "encoder_plan.h"
#include "freq_mean.h"
#include "gather.h"
#include "gpu_encoder.h"
#include "gpu_prof.h"
#include "linear.h"
#include "logmel.h"
#include "stem.h"

#include <cuda_bf16.h>
#include <math.h>
#include <new>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define E "preprocessor.encoder."
#define ENC_SLOT 0

// parts per ConvNeXt stage (0-3, as the dumps name them): the same kernel costs differently at each width. "H2D
// wait": how long the model's stream waited for the upload on copy_s (plus the test poisoning). Profiling drains
// every call (prof_collect), so no upload overlaps kernels there and this is about the upload's whole time; the
// separate "upload" line is its own time on copy_s.
enum { P_STAGE, P_FRONT, P_STEM, P_DW, P_MLP = P_DW + 4, P_DOWN = P_MLP + 4, P_HEAD = P_DOWN + 4, P_N };
static const char *const P_NAMES[P_N] = {"H2D wait",     "front end",    "stem",         "dwconv+LN s0",
                                         "dwconv+LN s1", "dwconv+LN s2", "dwconv+LN s3", "MLP s0",
                                         "MLP s1",       "MLP s2",       "MLP s3",       "(unused)",
                                         "downsample s1", "downsample s2", "downsample s3", "head"};

namespace {
struct dbuf {
    void *p = nullptr;
    size_t cap = 0;
};

struct block_w {
    float *dw_w49;  // owned: (49, C)
    const float *dw_b, *ln_w, *ln_b, *pw1_b, *pw2_b, *scale;
    const void *pw1_w, *pw2_w;  // float (FP32: the model's) or fp16 (BF16: pw_op, ac_convnext_mlp_weight)
    void *pw_op[2];             // owned (BF16 only): the fp16 pwconv1, pwconv2 weights
};

struct enc {
    ac_precision prec;
    char mlp_paths[64];  // ac_gpu_encoder_mlp_paths
    double fp16_bound;   // ac_gpu_encoder_fp16_bound (BF16 only) and the block where it is largest
    char fp16_block[32];
    const ac_model_config *cfg;
    ac_logmel_plan *lm;
    float *stem_wt;  // owned: (taps, C0)
    const float *stem_b, *stem_ln_w, *stem_ln_b;
    const float *ds_ln_w[4], *ds_ln_b[4], *ds_b[4];
    float *ds_w[4];   // owned: (Cout, 2, 2, Cin) fp32
    void *ds_wb[4];   // owned: same, bf16 (BF16 only), and its rounding remainder (ac_gpu_bf16_split_lo): the
    void *ds_wlo[4];  // downsample GEMMs run as split products, ~fp32 accuracy (bench/bf16_sim.py: plain bf16
                      // operands there were most of the BF16 encoder's error)
    block_w *blocks[4];
    const float *proj_w, *proj_b;
    int64_t min_samples;
    // per-call buffers, grown as needed
    // Staging: the host gathers a batch into stage_h (pinned: pcm_off | foff | pcm) and copy_s uploads it into one of
    // two device slots while the model's stream still runs the previous batch's kernels, which read the other slot.
    // On the model's stream the upload cost the whole copy per batch (328 MB of float PCM at 256 10 s clips: ~10 ms
    // at 35 GB/s, a third of a batch's time at the 8,000 clips/s target); overlapped it costs nothing while it is
    // shorter than the kernels. Events: `staged` (copy_s, after the upload: the host may refill stage_h, the model's
    // stream may start) and consumed[k] (model's stream, after the call's last kernel: slot k may be overwritten).
    cudaStream_t copy_s;
    dbuf stage_h;
    dbuf stage_d[2];
    cudaEvent_t staged, consumed[2];
    int staged_pending, consumed_pending[2], next_slot;
    ac_pcm_kind staged_kind;  // what the last call sent: ac_gpu_encoder_staged_kind
    dbuf lm_ws, bn0, logmel, xa, xb, hb, cols, mlp_ws, femb, mem;
    // AC_GPU_PROFILE=1: device time per part, from events between the parts of each call (summed after the call's
    // work has finished, so the stream is drained once per call), printed to stderr when the encoder is freed
    ac_prof prof;  // kernels/gpu_prof.h
    cudaEvent_t prof_up[2];  // around the upload on copy_s: its own time and rate
    int prof_up_on;
    double prof_up_ms, prof_up_bytes, prof_up_call_bytes;
};
}  // namespace

static void prof_mark(enc *e, int part, cudaStream_t s) { ac_prof_mark(&e->prof, part, s); }

static void prof_collect(enc *e) {
    static_assert(P_N <= AC_PROF_MAX_PARTS, "parts of the profile");
    float ms = 0;  // the model's stream waited for the upload, so it has ended
    if (ac_prof_collect(&e->prof) && e->prof_up_on &&
        cudaEventElapsedTime(&ms, e->prof_up[0], e->prof_up[1]) == cudaSuccess) {
        e->prof_up_ms += ms;
        e->prof_up_bytes += e->prof_up_call_bytes;
    }
    e->prof_up_on = 0;
}

static void prof_upload(enc *e, int end, size_t bytes) {  // marks the upload's start (end 0) or end (1) on copy_s
    if (!e->prof.on) return;
    if (!e->prof_up[end] && cudaEventCreate(&e->prof_up[end]) != cudaSuccess) {
        e->prof.on = 0;  // profiling is best effort: never an error of the encoder
        return;
    }
    if (cudaEventRecord(e->prof_up[end], e->copy_s) != cudaSuccess) {
        e->prof.on = 0;
        return;
    }
    e->prof_up_on = end;
    e->prof_up_call_bytes = (double)bytes;
}

static size_t al(size_t b) { return (b + 255) & ~(size_t)255; }

// The per-call device buffers (not the weights). After an out-of-memory they are all let go, so that a retry at
// a smaller batch starts from an empty device: buffers already grown for the failed batch would otherwise hold
// the memory its smaller successor needs for the rest (seen in emulation with EMU_DEVICE_MEMORY: halving failed
// down to one clip, which fits on a fresh device).
#define ENC_DEVICE_BUFS(e)                                                                                        \
    {&(e)->stage_d[0], &(e)->stage_d[1], &(e)->lm_ws, &(e)->bn0, &(e)->logmel, &(e)->xa, &(e)->xb, &(e)->hb,     \
     &(e)->cols, &(e)->mlp_ws, &(e)->femb, &(e)->mem}
static void free_device_buffers(enc *e) {
    if (e->copy_s) (void)cudaStreamSynchronize(e->copy_s);  // an upload may still write a slot
    dbuf *dev[] = ENC_DEVICE_BUFS(e);
    for (dbuf *b : dev) {
        if (b->p) cudaFree(b->p);  // synchronises the device: queued kernels may still use it
        b->p = nullptr;
        b->cap = 0;
    }
}

static size_t device_buffer_bytes(const enc *e) {
    const dbuf *dev[] = ENC_DEVICE_BUFS(e);
    size_t n = 0;
    for (const dbuf *b : dev) n += b->cap;
    return n;
}

static void enc_free(void *p) {
    enc *e = (enc *)p;
    if (!e) return;
    if (e->prof.calls) {
        double tot = 0;
        for (int i = 0; i < P_N; i++) tot += e->prof.ms[i];
        fprintf(stderr, "gpu profile: %d encoder calls, %.3f ms of device time\n", e->prof.calls, tot);
        for (int i = 0; i < P_N; i++)
            if (i != P_DOWN)  // no downsample before stage 0
                fprintf(stderr, "gpu profile: %-13s %10.3f ms  %5.1f %%\n", P_NAMES[i], e->prof.ms[i],
                        tot > 0 ? 100 * e->prof.ms[i] / tot : 0);
        if (e->prof_up_ms > 0)  // not in the total: it overlaps the previous call's kernels
            fprintf(stderr, "gpu profile: upload %10.3f ms on the copy stream, %.1f GB/s\n", e->prof_up_ms,
                    e->prof_up_bytes / (e->prof_up_ms * 1e6));
    }
    ac_prof_free(&e->prof);
    for (int k = 0; k < 2; k++)
        if (e->prof_up[k]) cudaEventDestroy(e->prof_up[k]);
    ac_logmel_plan_free(e->lm);
    if (e->stem_wt) cudaFree(e->stem_wt);
    for (int s = 0; s < 4; s++) {
        if (e->ds_w[s]) cudaFree(e->ds_w[s]);
        if (e->ds_wb[s]) cudaFree(e->ds_wb[s]);
        if (e->ds_wlo[s]) cudaFree(e->ds_wlo[s]);
        if (e->blocks[s])
            for (int k = 0; k < e->cfg->encoder.depths[s]; k++) {
                block_w *b = &e->blocks[s][k];
                if (b->dw_w49) cudaFree(b->dw_w49);
                for (int j = 0; j < 2; j++)
                    if (b->pw_op[j]) cudaFree(b->pw_op[j]);
            }
        free(e->blocks[s]);
    }
    free_device_buffers(e);  // first: it waits for an upload that may still read the pinned buffer
    if (e->stage_h.p) cudaFreeHost(e->stage_h.p);
    if (e->staged) cudaEventDestroy(e->staged);
    for (int k = 0; k < 2; k++)
        if (e->consumed[k]) cudaEventDestroy(e->consumed[k]);
    if (e->copy_s) cudaStreamDestroy(e->copy_s);
    delete e;
}

// Grows a device buffer (contents are not kept). The stream is drained first: queued kernels may still use it.
static ac_status grow(dbuf *b, size_t bytes, cudaStream_t stream) {
    if (bytes <= b->cap) return AC_OK;
    CUDA_CHECK(cudaStreamSynchronize(stream));
    if (b->p) CUDA_CHECK(cudaFree(b->p));
    b->p = nullptr;
    b->cap = 0;
    size_t want = al(bytes + bytes / 8);  // headroom: the next batch is often a little longer
    cudaError_t err = cudaMalloc(&b->p, want);
    if (err != cudaSuccess) {
        cudaGetLastError();
        b->p = nullptr;
        return ac_fail(err == cudaErrorMemoryAllocation ? AC_ERR_NOMEM : AC_ERR_CUDA,
                       "encoder: cannot allocate %.1f MiB on the device: %s (hint: encode fewer or shorter clips per "
                       "batch)", want / 1048576.0, cudaGetErrorString(err));
    }
    b->cap = want;
    return AC_OK;
}

static ac_status grow_host(dbuf *b, size_t bytes) {
    if (bytes <= b->cap) return AC_OK;
    if (b->p) CUDA_CHECK(cudaFreeHost(b->p));
    b->p = nullptr;
    b->cap = 0;
    size_t want = al(bytes + bytes / 8);
    CUDA_CHECK(cudaMallocHost(&b->p, want));
    b->cap = want;
    return AC_OK;
}

#define NEED(ptr, name)                                                                                           \
    do {                                                                                                          \
        if (!(ptr))                                                                                               \
            return ac_fail(AC_ERR_FORMAT, "%s: tensor %s missing on the device (hint: re-convert the model with "  \
                           "tools/convert.py)", ac_model_file_name(ac_gpu_model_file(g)), name);                 \
    } while (0)

static const float *F32(const ac_gpu_model *g, const char *fmt, int a, int b) {
    char name[256];
    snprintf(name, sizeof name, fmt, a, b);
    return ac_gpu_f32(g, name);
}

// A pwconv weight as the MLP takes it: the model's fp32 copy (FP32), or an fp16 copy made here into *owned
// (BF16: the MLP's operand type, kernels/convnext_mlp_operand.cuh). NULL *w when the model lacks it.
static ac_status pw_weight(const ac_gpu_model *g, ac_precision prec, const char *fmt, int si, int k, int rows,
                           int cols, const void **w, void **owned) {
    char name[256];
    snprintf(name, sizeof name, fmt, si, k);
    const float *w32 = ac_gpu_f32(g, name);
    *w = w32;
    if (!w32 || prec != AC_PREC_BF16) return AC_OK;
    const int64_t n = (int64_t)rows * cols;
    CUDA_CHECK(cudaMalloc(owned, sizeof(uint16_t) * (size_t)n));
    *w = *owned;
    return ac_convnext_mlp_weight(name, w32, n, *owned, ac_gpu_stream(g));
}

static ac_status host_tensor(const ac_gpu_model *g, const char *name, float **out) {
    const ac_tensor *t;
    ac_status st = ac_model_file_tensor(ac_gpu_model_file(g), name, &t);
    if (st) return st;
    *out = (float *)malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
    if (!*out) return ac_fail(AC_ERR_NOMEM, "encoder: host out of memory for %s", name);
    return ac_tensor_to_f32(t, *out);
}

// The largest magnitude the input-dependent fp16 operands of block (si, k)'s MLP can take, whatever the input:
// h = LayerNorm output, |h_c| <= |ln_w_c| sqrt(C - 1) + |ln_b_c| (a normalised value of C elements is at most
// sqrt(C - 1) standard deviations from their mean: Samuelson's inequality; eps only shrinks it); the GELU outputs,
// GELU(v) <= max(v, 0) + 0.17, of pre-activations |v_j| <= |b1_j| + sum_c |W1_jc| max|h_c|. Host arithmetic on
// the checkpoint's values, once at load (~4 C^2 per block).
static ac_status block_fp16_bound(const ac_gpu_model *g, int si, int k, int C, double *bound) {
    char n[4][128];
    const char *what[4] = {"norm.weight", "norm.bias", "pwconv1.weight", "pwconv1.bias"};
    float *t[4] = {NULL, NULL, NULL, NULL};
    ac_status st = AC_OK;
    for (int i = 0; i < 4 && !st; i++) {
        snprintf(n[i], sizeof n[i], E "stages.%d.%d.%s", si, k, what[i]);
        st = host_tensor(g, n[i], &t[i]);
    }
    double *hmax = st ? NULL : (double *)malloc(sizeof(double) * (size_t)C);
    if (!st && !hmax) st = ac_fail(AC_ERR_NOMEM, "encoder: host out of memory");
    if (!st) {
        double b = 0;
        for (int c = 0; c < C; c++) {
            hmax[c] = fabs((double)t[0][c]) * sqrt((double)(C - 1)) + fabs((double)t[1][c]);
            if (hmax[c] > b) b = hmax[c];
        }
        for (int j = 0; j < 4 * C; j++) {
            double v = fabs((double)t[3][j]);
            for (int c = 0; c < C; c++) v += fabs((double)t[2][(size_t)j * C + c]) * hmax[c];
            if (v + 0.17 > b) b = v + 0.17;
        }
        *bound = b;
    }
    free(hmax);
    for (int i = 0; i < 4; i++) free(t[i]);
    return st;
}

// AC_STFT's names, indexed by ac_stft_method
static const char *const STFT_NAMES[] = {"gemm", "fft", "fft32"};

extern "C" const char *ac_gpu_stft_name(ac_stft_method m) {
    return (unsigned)m < sizeof STFT_NAMES / sizeof STFT_NAMES[0] ? STFT_NAMES[m] : "?";
}

// AC_STFT=fft32, fft or gemm in the environment overrides the method the precision picks (logmel.h)
extern "C" ac_stft_method ac_gpu_stft_method(ac_precision prec) {
    const char *v = getenv("AC_STFT");
    for (int m = 0; v && m < (int)(sizeof STFT_NAMES / sizeof STFT_NAMES[0]); m++)
        if (!strcmp(v, STFT_NAMES[m])) return (ac_stft_method)m;
    return prec == AC_PREC_FP32 ? AC_STFT_DFT_GEMM : AC_STFT_FFT32;
}

static ac_status frontend_init(ac_gpu_model *g, enc *e) {
    const ac_model_config *c = e->cfg;
    const int nfft = c->frontend.n_fft, nm = c->frontend.n_mels;
    float *cr = NULL, *ci = NULL, *mw = NULL, *bw = NULL, *bb = NULL, *bm = NULL, *bv = NULL;
    float *win = (float *)malloc(sizeof(float) * nfft), *alpha = (float *)malloc(sizeof(float) * nm),
          *beta = (float *)malloc(sizeof(float) * nm);
    ac_logmel_params p = {};
    p.method = ac_gpu_stft_method(e->prec);
    ac_status st = !win || !alpha || !beta ? ac_fail(AC_ERR_NOMEM, "encoder: host out of memory") : AC_OK;
    if (!st) st = host_tensor(g, E "spectrogram_extractor.stft.conv_real.weight", &cr);
    if (!st) st = host_tensor(g, E "spectrogram_extractor.stft.conv_imag.weight", &ci);
    if (!st) st = host_tensor(g, E "logmel_extractor.melW", &mw);
    if (!st) st = host_tensor(g, E "bn0.weight", &bw);
    if (!st) st = host_tensor(g, E "bn0.bias", &bb);
    if (!st) st = host_tensor(g, E "bn0.running_mean", &bm);
    if (!st) st = host_tensor(g, E "bn0.running_var", &bv);
    if (!st && p.method != AC_STFT_DFT_GEMM) st = ac_stft_window_from_dft(cr, ci, nfft, win);
    if (!st) {
        ac_bn0_fold(bw, bb, bm, bv, (float)c->frontend.bn_eps, nm, alpha, beta);
        p.n_fft = nfft;
        p.hop = c->frontend.hop;
        p.n_mels = nm;
        p.amin = (float)c->frontend.amin;
        p.conv_real = cr;
        p.conv_imag = ci;
        p.window = win;
        p.alpha = alpha;
        p.beta = beta;
        p.melW = mw;
        p.cublas = ac_gpu_cublas(g);
        p.stream = ac_gpu_stream(g);
        st = ac_logmel_plan_create(&p, &e->lm);
    }
    free(cr);
    free(ci);
    free(mw);
    free(bw);
    free(bb);
    free(bm);
    free(bv);
    free(win);
    free(alpha);
    free(beta);
    return st;
}

static ac_status enc_init(ac_gpu_model *g, enc *e) {
    const ac_model_config *c = e->cfg;
    cudaStream_t s = ac_gpu_stream(g);
    if (c->encoder.stem_stride[0] != c->encoder.stem_kernel[0] || c->encoder.stem_stride[1] != c->encoder.stem_kernel[1] ||
        c->encoder.in_chans != 1 || c->frontend.win_length != c->frontend.n_fft)
        return ac_fail(AC_ERR_FORMAT, "encoder: unsupported variant (stem stride != kernel, in_chans != 1 or win_length "
                       "!= n_fft) (hint: only the published CNext-trans layout is implemented)");
    e->min_samples = ac_enc_min_samples(c);
    CUDA_CHECK(cudaStreamCreateWithFlags(&e->copy_s, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreateWithFlags(&e->staged, cudaEventDisableTiming));
    for (int k = 0; k < 2; k++) CUDA_CHECK(cudaEventCreateWithFlags(&e->consumed[k], cudaEventDisableTiming));
    ac_status st = frontend_init(g, e);
    if (st) return st;
    const float *stem_w = ac_gpu_f32(g, E "downsample_layers.0.0.weight");
    e->stem_b = ac_gpu_f32(g, E "downsample_layers.0.0.bias");
    e->stem_ln_w = ac_gpu_f32(g, E "downsample_layers.0.1.weight");
    e->stem_ln_b = ac_gpu_f32(g, E "downsample_layers.0.1.bias");
    NEED(stem_w && e->stem_b && e->stem_ln_w && e->stem_ln_b, E "downsample_layers.0.*");
    const int stem_taps = c->encoder.stem_kernel[0] * c->encoder.stem_kernel[1];
    CUDA_CHECK(cudaMalloc((void **)&e->stem_wt, sizeof(float) * stem_taps * c->encoder.dims[0]));
    if ((st = ac_stem_weight_t(stem_w, c->encoder.dims[0], stem_taps, e->stem_wt, s))) return st;
    const int *dims = c->encoder.dims;
    for (int i = 1; i < 4; i++) {
        e->ds_ln_w[i] = F32(g, E "downsample_layers.%d.0.weight", i, 0);
        e->ds_ln_b[i] = F32(g, E "downsample_layers.%d.0.bias", i, 0);
        e->ds_b[i] = F32(g, E "downsample_layers.%d.1.bias", i, 0);
        const float *w = F32(g, E "downsample_layers.%d.1.weight", i, 0);
        NEED(e->ds_ln_w[i] && e->ds_ln_b[i] && e->ds_b[i] && w, E "downsample_layers.{1,2,3}.*");
        const size_t ne = (size_t)dims[i] * dims[i - 1] * 4;
        CUDA_CHECK(cudaMalloc((void **)&e->ds_w[i], sizeof(float) * ne));
        if (e->prec == AC_PREC_BF16) {
            CUDA_CHECK(cudaMalloc(&e->ds_wb[i], sizeof(__nv_bfloat16) * ne));
            CUDA_CHECK(cudaMalloc(&e->ds_wlo[i], sizeof(__nv_bfloat16) * ne));
        }
        if ((st = ac_downsample_weight_reorder(w, dims[i], dims[i - 1], e->ds_w[i], e->ds_wb[i], s))) return st;
        if (e->ds_wlo[i] && (st = ac_gpu_bf16_split_lo(e->ds_w[i], e->ds_wb[i], (int64_t)ne, e->ds_wlo[i], s)))
            return st;
    }
    for (int si = 0; si < 4; si++) {
        e->blocks[si] = (block_w *)calloc((size_t)c->encoder.depths[si], sizeof(block_w));
        if (!e->blocks[si]) return ac_fail(AC_ERR_NOMEM, "encoder: host out of memory");
        for (int k = 0; k < c->encoder.depths[si]; k++) {
            block_w *b = &e->blocks[si][k];
            const float *dw = F32(g, E "stages.%d.%d.dwconv.weight", si, k);
            b->dw_b = F32(g, E "stages.%d.%d.dwconv.bias", si, k);
            b->ln_w = F32(g, E "stages.%d.%d.norm.weight", si, k);
            b->ln_b = F32(g, E "stages.%d.%d.norm.bias", si, k);
            b->pw1_b = F32(g, E "stages.%d.%d.pwconv1.bias", si, k);
            b->pw2_b = F32(g, E "stages.%d.%d.pwconv2.bias", si, k);
            b->scale = F32(g, E "stages.%d.%d.scale_layer", si, k);
            const int C = dims[si];
            if ((st = pw_weight(g, e->prec, E "stages.%d.%d.pwconv1.weight", si, k, 4 * C, C, &b->pw1_w,
                                &b->pw_op[0])) ||
                (st = pw_weight(g, e->prec, E "stages.%d.%d.pwconv2.weight", si, k, C, 4 * C, &b->pw2_w,
                                &b->pw_op[1])))
                return st;
            NEED(dw && b->dw_b && b->ln_w && b->ln_b && b->pw1_b && b->pw2_b && b->scale && b->pw1_w && b->pw2_w,
                 E "stages.*.*");
            CUDA_CHECK(cudaMalloc((void **)&b->dw_w49, sizeof(float) * 49 * dims[si]));
            if ((st = ac_dwconv7_weight_t(dw, dims[si], b->dw_w49, s))) return st;
            double bound = 0;
            if (e->prec == AC_PREC_BF16 && (st = block_fp16_bound(g, si, k, C, &bound))) return st;
            if (bound > e->fp16_bound) {
                e->fp16_bound = bound;
                snprintf(e->fp16_block, sizeof e->fp16_block, "stages.%d.%d", si, k);
            }
        }
    }
    // A bound past fp16's range is not an error: it holds for any input, real activations sit far below it. But
    // then clamping (convnext_mlp_operand.cuh) cannot be ruled out, so say so once, with the way around it.
    if (e->fp16_bound > 65504.0)
        fprintf(stderr, "audiocap: warning: %s: ConvNeXt block %s's MLP operands could reach %.3g for some input, "
                "beyond fp16's 65504: the BF16 mode would clamp such values there (--precision fp32 never does)\n",
                ac_model_file_name(ac_gpu_model_file(g)), e->fp16_block, e->fp16_bound);
    e->proj_w = ac_gpu_f32(g, "model.projection.2.weight");
    e->proj_b = ac_gpu_f32(g, "model.projection.2.bias");
    NEED(e->proj_w && e->proj_b, "model.projection.2.*");
    CUDA_CHECK(cudaStreamSynchronize(s));
    return AC_OK;
}

static ac_status get_enc(ac_gpu_model *g, enc **out);

extern "C" const char *ac_gpu_encoder_mlp_paths(ac_gpu_model *g) {
    enc *e = NULL;
    if (get_enc(g, &e)) return "?";
    if (!e->mlp_paths[0]) {
        size_t n = 0;
        for (int s = 0; s < 4; s++) {
            // h will be a 256-byte aligned buffer of ours, as is x: any such pointer stands in for them
            const block_w *b = &e->blocks[s][0];
            const ac_mlp_path p = ac_convnext_mlp_choose(e->prec, e->cfg->encoder.dims[s], b->pw1_w, b->pw1_w,
                                                         b->pw2_w, (const float *)b->pw1_w);
            n += (size_t)snprintf(e->mlp_paths + n, sizeof e->mlp_paths - n, "%s%s", s ? "/" : "", ac_mlp_path_name(p));
            if (n >= sizeof e->mlp_paths) break;
        }
    }
    return e->mlp_paths;
}

static ac_status get_enc(ac_gpu_model *g, enc **out) {
    ac_status st = ac_gpu_model_use(g);  // the buffers, events and plans made below belong to the current device
    if (st) return st;
    enc *e = (enc *)ac_gpu_state(g, ENC_SLOT);
    if (!e) {
        e = new (std::nothrow) enc();
        if (!e) return ac_fail(AC_ERR_NOMEM, "encoder: host out of memory");
        e->prec = ac_gpu_model_precision(g);
        e->cfg = ac_gpu_model_config(g);
        e->prof.on = ac_prof_wanted();
        if ((st = enc_init(g, e))) {
            enc_free(e);
            return st;
        }
        if ((st = ac_gpu_state_attach(g, ENC_SLOT, e, enc_free))) {
            enc_free(e);
            return st;
        }
    }
    *out = e;
    return AC_OK;
}

extern "C" ac_status ac_gpu_encoder_prepare(ac_gpu_model *g) {
    enc *e = NULL;
    return get_enc(g, &e);
}

extern "C" ac_pcm_kind ac_gpu_encoder_staged_kind(ac_gpu_model *g) {
    enc *e = NULL;
    return get_enc(g, &e) ? AC_PCM_F32 : e->staged_kind;
}

extern "C" int64_t ac_gpu_encoder_min_samples(const ac_gpu_model *g) {
    return ac_enc_min_samples(ac_gpu_model_config(g));
}

extern "C" ac_status ac_gpu_encoder_fp16_bound(ac_gpu_model *g, double *bound, const char **block) {
    enc *e = NULL;
    ac_status st = get_enc(g, &e);
    if (st) return st;
    *bound = e->fp16_bound;
    if (block) *block = e->fp16_block;
    return AC_OK;
}

static size_t mlp_workspace(const enc *e, int64_t N, int C) { return ac_convnext_mlp_workspace(e->prec, N, C); }

static ac_status run_mlp(ac_gpu_model *g, const enc *e, const block_w *b, int64_t N, int C, float *x) {
    return ac_convnext_mlp(e->prec, N, C, e->hb.p, b->pw1_w, b->pw1_b, b->pw2_w, b->pw2_b, b->scale, x, e->mlp_ws.p,
                           e->mlp_ws.cap, ac_gpu_stream(g));
}

// ---- dumps: device stage -> host, one clip at a time, in the upstream layout ----------------------------------
namespace {
struct dumper {
    ac_gpu_dump_fn fn;
    void *ctx;
    const int *idx;  // packed clip k -> caller's index
    int n;
    float *host;
    size_t cap;
};
}  // namespace

static ac_status dump_fetch(dumper *d, const void *src, size_t count, cudaStream_t s) {
    if (count > d->cap) {
        float *h = (float *)realloc(d->host, sizeof(float) * count);
        if (!h) return ac_fail(AC_ERR_NOMEM, "encoder dump: host out of memory");
        d->host = h;
        d->cap = count;
    }
    CUDA_CHECK(cudaMemcpyAsync(d->host, src, sizeof(float) * count, cudaMemcpyDeviceToHost, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
    return AC_OK;
}

// rows x (frames * F, C) packed by off -> per clip (C, T, F) (C == 0: (T, F) as is; transpose_2d: (C, T))
static ac_status dump_stage(dumper *d, const char *name, const void *src, const int *off, int F, int C, int kind,
                            cudaStream_t s) {
    if (!d->fn) return AC_OK;
    const size_t total = (size_t)off[d->n] * F * (C ? C : 1);
    ac_status st = dump_fetch(d, src, total, s);
    if (st) return st;
    for (int k = 0; k < d->n; k++) {
        const int T = off[k + 1] - off[k];
        const float *x = d->host + (size_t)off[k] * F * (C ? C : 1);
        if (kind == 0) {  // (T, F)
            int64_t shp[2] = {T, F};
            d->fn(d->ctx, d->idx[k], name, x, 2, shp);
            continue;
        }
        const size_t ne = (size_t)T * F * C;
        float *y = (float *)malloc(sizeof(float) * (ne ? ne : 1));
        if (!y) return ac_fail(AC_ERR_NOMEM, "encoder dump: host out of memory");
        if (kind == 1) {  // (T, F, C) -> (C, T, F)
            for (int t = 0; t < T; t++)
                for (int f = 0; f < F; f++)
                    for (int c = 0; c < C; c++) y[((size_t)c * T + t) * F + f] = x[((size_t)t * F + f) * C + c];
            int64_t shp[3] = {C, T, F};
            d->fn(d->ctx, d->idx[k], name, y, 3, shp);
        } else {  // (T, C) -> (C, T)
            for (int t = 0; t < T; t++)
                for (int c = 0; c < C; c++) y[(size_t)c * T + t] = x[(size_t)t * C + c];
            int64_t shp[2] = {C, T};
            d->fn(d->ctx, d->idx[k], name, y, 2, shp);
        }
        free(y);
    }
    return AC_OK;
}

// ---- the encoder ------------------------------------------------------------------------------------------------
static ac_status encode_device(ac_gpu_model *g, enc *e, int n, ac_pcm_kind pcm_kind, const void *d_pcm, char *dv,
                               size_t o_foff, const int *const *O, const int *F, int64_t R, dumper *dmp,
                               const float **memory);

// The host PCM of clips idx[0..n) into the pinned staging area at pcm (offsets into pcm_off[1..n]): as int16 when
// kind is AC_PCM_F32_PACK and every sample is exactly one (*pcm_kind, *staged updated), else as given.
static ac_status gather(int n, ac_pcm_kind kind, const void *const *x, const int64_t *n_samples, const int *idx,
                        char *pcm, int64_t *pcm_off, ac_pcm_kind *pcm_kind, size_t *staged, size_t o_pcm) {
    const size_t esz = kind == AC_PCM_S16 ? 2 : 4;
    const void **src = (const void **)malloc(sizeof(void *) * n);
    size_t *bytes = (size_t *)malloc(sizeof(size_t) * n);
    int64_t *count = (int64_t *)malloc(sizeof(int64_t) * n);
    if (!src || !bytes || !count) {
        free(src);
        free(bytes);
        free(count);
        return ac_fail(AC_ERR_NOMEM, "encoder: host out of memory for %d clips", n);
    }
    for (int k = 0; k < n; k++) {
        pcm_off[k + 1] = pcm_off[k] + n_samples[idx[k]];
        src[k] = x[idx[k]];
        count[k] = n_samples[idx[k]];
        bytes[k] = esz * (size_t)count[k];
    }
    // several threads for a large batch: see gather.h
    if (kind == AC_PCM_F32_PACK && ac_gather_s16_exact((int16_t *)pcm, n, (const float *const *)src, count)) {
        *pcm_kind = AC_PCM_S16;
        *staged = o_pcm + sizeof(int16_t) * (size_t)pcm_off[n];
    } else {
        ac_gather_copy(pcm, n, src, bytes);
    }
    free(src);
    free(bytes);
    free(count);
    return AC_OK;
}

// Stages the batch and uploads it (see enc's staging), then runs the kernels. d_pcm NULL: the PCM is x's (host),
// gathered and uploaded with the offsets; else it is already on the device, packed in the order of idx (which
// then lists every clip: resident batches keep their too-short clips as clips of zero frames), and only the
// offsets cross PCIe.
static ac_status encode(ac_gpu_model *g, enc *e, int n, ac_pcm_kind kind, const void *const *x, const void *d_pcm,
                        const int64_t *n_samples, const int *idx, dumper *dmp, int *T /*(n, 5)*/, int *off /*(5, n+1)*/,
                        const float **memory) {
    const ac_model_config *c = e->cfg;
    cudaStream_t s = ac_gpu_stream(g);
    int F[AC_ENC_STAGES];
    {
        int T0[AC_ENC_STAGES];
        ac_enc_stage_dims(c, n_samples[idx[0]], T0, F);
    }
    if (ac_enc_offsets(n, T, off))
        return ac_fail(AC_ERR_INVALID_ARG, "encoder: the batch has more than 2^31 frames (hint: fewer clips per batch)");
    const int *O[AC_ENC_STAGES];
    for (int si = 0; si < AC_ENC_STAGES; si++) O[si] = off + si * (n + 1);
    const int64_t R = O[0][n];

    // staging: pcm_off (int64, n + 1) | foff (int, 5 (n + 1)) | pcm; one H2D copy
    const size_t esz = kind == AC_PCM_S16 ? 2 : 4;  // F32_PACK: room for float, in case it does not pack
    int64_t n_pcm = 0;
    if (!d_pcm)
        for (int k = 0; k < n; k++) n_pcm += n_samples[idx[k]];
    const size_t o_foff = al(sizeof(int64_t) * (n + 1)), o_pcm = o_foff + al(sizeof(int) * AC_ENC_STAGES * (n + 1));
    size_t staged = o_pcm + esz * (size_t)n_pcm;
    if (e->staged_pending) CUDA_CHECK(cudaEventSynchronize(e->staged));  // the previous call's upload has left
    e->staged_pending = 0;
    const int slot = e->next_slot;
    e->next_slot ^= 1;
    ac_status st = grow_host(&e->stage_h, staged);
    if (!st) st = grow(&e->stage_d[slot], staged, s);  // drains the model's stream: its kernels may read the slot
    if (st) return st;
    char *h = (char *)e->stage_h.p;
    int64_t *pcm_off = (int64_t *)h;
    pcm_off[0] = 0;
    ac_pcm_kind pcm_kind = kind == AC_PCM_S16 ? AC_PCM_S16 : AC_PCM_F32;
    if (d_pcm)
        for (int k = 0; k < n; k++) pcm_off[k + 1] = pcm_off[k] + n_samples[idx[k]];
    else if ((st = gather(n, kind, x, n_samples, idx, h + o_pcm, pcm_off, &pcm_kind, &staged, o_pcm)))
        return st;
    e->staged_kind = pcm_kind;
    memcpy(h + o_foff, off, sizeof(int) * AC_ENC_STAGES * (n + 1));
    char *dv = (char *)e->stage_d[slot].p;
    prof_mark(e, P_STAGE, s);
    if (e->consumed_pending[slot]) CUDA_CHECK(cudaStreamWaitEvent(e->copy_s, e->consumed[slot], 0));
    prof_upload(e, 0, staged);
    CUDA_CHECK(cudaMemcpyAsync(dv, h, staged, cudaMemcpyHostToDevice, e->copy_s));
    prof_upload(e, 1, staged);
    CUDA_CHECK(cudaEventRecord(e->staged, e->copy_s));
    e->staged_pending = 1;
    CUDA_CHECK(cudaStreamWaitEvent(s, e->staged, 0));
    // every kernel below reads the slot (the PCM, and the frame offsets of each stage); whatever happens to them,
    // the next upload into it waits for them
    st = encode_device(g, e, n, pcm_kind, d_pcm ? d_pcm : dv + o_pcm, dv, o_foff, O, F, R, dmp, memory);
    cudaError_t rec = cudaEventRecord(e->consumed[slot], s);
    if (rec == cudaSuccess) e->consumed_pending[slot] = 1;
    else if (!st) CUDA_CHECK(rec);
    return st;
}

// The kernels of one call, on the model's stream: PCM at d_pcm, pcm_off at dv, the stages' frame offsets at
// dv + o_foff (the uploaded staging area).
static ac_status encode_device(ac_gpu_model *g, enc *e, int n, ac_pcm_kind pcm_kind, const void *d_pcm, char *dv,
                               size_t o_foff, const int *const *O, const int *F, int64_t R, dumper *dmp,
                               const float **memory) {
    const ac_model_config *c = e->cfg;
    cudaStream_t s = ac_gpu_stream(g);
    const int *dims = c->encoder.dims;
    const float eps = (float)c->encoder.ln_eps;
    ac_status st;
    const int64_t *d_pcm_off = (const int64_t *)dv;
    const int *d_off[AC_ENC_STAGES];
    for (int si = 0; si < AC_ENC_STAGES; si++) d_off[si] = (const int *)(dv + o_foff) + si * (n + 1);

    // buffers
    const size_t elt = e->prec == AC_PREC_BF16 ? sizeof(uint16_t) : sizeof(float);  // h: the MLP's operand type
    size_t act = 0, cols = 0, mlpws = 0;
    for (int si = 1; si < AC_ENC_STAGES; si++) {
        const int64_t N = (int64_t)O[si][n] * F[si];
        const int C = dims[si - 1];
        if ((size_t)N * C > act) act = (size_t)N * C;
        if (si > 1 && (size_t)N * 4 * dims[si - 2] > cols) cols = (size_t)N * 4 * dims[si - 2];
        if (mlp_workspace(e, N, C) > mlpws) mlpws = mlp_workspace(e, N, C);
    }
    const int C3 = dims[3], D = c->decoder.d_model;
    const int64_t T3 = O[4][n];
    const size_t lm = (size_t)R * F[0];
    if ((st = grow(&e->lm_ws, ac_logmel_workspace(e->lm, R), s)) || (st = grow(&e->bn0, sizeof(float) * lm, s)) ||
        (dmp->fn && (st = grow(&e->logmel, sizeof(float) * lm, s))) || (st = grow(&e->xa, sizeof(float) * act, s)) ||
        (st = grow(&e->xb, sizeof(float) * act, s)) || (st = grow(&e->hb, elt * act, s)) ||
        (st = grow(&e->cols, sizeof(float) * (cols ? cols : 1), s)) || (st = grow(&e->mlp_ws, mlpws ? mlpws : 1, s)) ||
        (st = grow(&e->femb, sizeof(float) * (size_t)T3 * C3, s)) ||
        (st = grow(&e->mem, sizeof(float) * (size_t)T3 * D, s)))
        return st;

    // AC_ENC_POISON=1 (the tests): every activation buffer is set to NaN first, so a stage that leaves elements
    // unwritten shows up as NaN in the output instead of reading a previous call's values
    const char *poison = getenv("AC_ENC_POISON");
    if (poison && poison[0] == '1') {
        dbuf *bufs[] = {&e->lm_ws, &e->bn0, &e->logmel, &e->xa, &e->xb, &e->hb, &e->cols, &e->mlp_ws, &e->femb, &e->mem};
        for (dbuf *b : bufs)
            if (b->p) CUDA_CHECK(cudaMemsetAsync(b->p, 0xff, b->cap, s));
    }

    prof_mark(e, P_STAGE, s);  // the copy, and the poisoning when the tests ask for it
    // front end
    float *bn0 = (float *)e->bn0.p;
    float *lmraw = dmp->fn ? (float *)e->logmel.p : NULL;
    if ((st = ac_logmel_run(e->lm, pcm_kind, d_pcm, d_pcm_off, d_off[0], n, R, e->lm_ws.p, e->lm_ws.cap, lmraw, bn0)))
        return st;
    prof_mark(e, P_FRONT, s);
    if ((st = dump_stage(dmp, "logmel", lmraw, O[0], F[0], 0, 0, s))) return st;
    if ((st = dump_stage(dmp, "bn0", bn0, O[0], F[0], 0, 0, s))) return st;

    // stem
    float *xa = (float *)e->xa.p, *xb = (float *)e->xb.p;
    if ((st = ac_stem_conv_ln(bn0, d_off[0], d_off[1], n, O[1][n], F[0], c->encoder.stem_kernel[0],
                              c->encoder.stem_kernel[1], c->encoder.stem_padding[0], c->encoder.stem_padding[1],
                              e->stem_wt, e->stem_b, e->stem_ln_w, e->stem_ln_b, dims[0], eps, xa, s)))
        return st;
    prof_mark(e, P_STEM, s);
    if ((st = dump_stage(dmp, "stem", xa, O[1], F[1], dims[0], 1, s))) return st;

    for (int si = 0; si < 4; si++) {
        const int p = si + 1, C = dims[si];  // plan stage of this ConvNeXt stage
        if (si > 0) {
            // fp32 columns in both precisions: BF16 splits them on the fly (ac_gpu_linear's split product)
            if ((st = ac_downsample_ln_im2col(xa, d_off[p - 1], d_off[p], n, O[p][n], F[p - 1], dims[si - 1],
                                              e->ds_ln_w[si], e->ds_ln_b[si], eps, (float *)e->cols.p, s)))
                return st;
            if ((st = ac_linear((int64_t)O[p][n] * F[p], 4 * dims[si - 1], C, (const float *)e->cols.p, e->ds_w[si],
                                e->ds_wb[si], e->ds_wlo[si], e->ds_b[si], 0, xb, s)))
                return st;
            float *t = xa;
            xa = xb;
            xb = t;
            prof_mark(e, P_DOWN + si, s);
        }
        const int64_t N = (int64_t)O[p][n] * F[p];
        for (int k = 0; k < c->encoder.depths[si]; k++) {
            const block_w *b = &e->blocks[si][k];
            if ((st = ac_dwconv7_ln(e->prec, xa, d_off[p], n, O[p][n], F[p], C, b->dw_w49, b->dw_b, b->ln_w, b->ln_b,
                                    eps, e->hb.p, s)))
                return st;
            prof_mark(e, P_DW + si, s);
            if ((st = run_mlp(g, e, b, N, C, xa))) return st;
            prof_mark(e, P_MLP + si, s);
        }
        char name[32];
        snprintf(name, sizeof name, "stage%d", si);
        if ((st = dump_stage(dmp, name, xa, O[p], F[p], C, 1, s))) return st;
    }
    float *femb = (float *)e->femb.p, *mem = (float *)e->mem.p;
    if ((st = ac_freq_mean(xa, T3, F[4], C3, femb, s))) return st;
    if ((st = dump_stage(dmp, "frame_embs", femb, O[4], C3, 0, 0, s))) return st;
    // the projection stays fp32 in both precisions: (T', C3) x (C3, D) is ~0.1 % of the encoder's work
    if ((st = ac_linear(T3, C3, D, femb, e->proj_w, NULL, NULL, e->proj_b, 1, mem, s))) return st;
    prof_mark(e, P_HEAD, s);
    prof_collect(e);
    if ((st = dump_stage(dmp, "projection", mem, O[4], 1, D, 2, s))) return st;
    *memory = mem;
    return AC_OK;
}

// ac_gpu_encode_ex (x: host clips, d_pcm NULL) and ac_gpu_encode_resident (d_pcm: the device PCM, x NULL)
static ac_status encode_call(ac_gpu_model *g, int n, ac_pcm_kind kind, const void *const *x, const void *d_pcm,
                             const int64_t *n_samples, ac_gpu_dump_fn dump, void *dump_ctx, const float **memory,
                             int64_t *mem_off, int *n_frames, int *mem_len, ac_status *clip_status) {
    enc *e = NULL;
    ac_status st = get_enc(g, &e);
    if (st) return st;
    const ac_model_config *c = e->cfg;
    int *idx = (int *)malloc(sizeof(int) * n), *T = (int *)malloc(sizeof(int) * n * AC_ENC_STAGES);
    int *off = (int *)malloc(sizeof(int) * AC_ENC_STAGES * (n + 1));
    dumper d = {dump, dump_ctx, idx, 0, NULL, 0};
    if (!idx || !T || !off) {
        st = ac_fail(AC_ERR_NOMEM, "encoder: host out of memory for %d clips", n);
        goto done;
    }
    {
        int k = 0, live = 0;
        for (int i = 0; i < n; i++) {
            n_frames[i] = mem_len[i] = 0;
            clip_status[i] = AC_OK;
            if ((!d_pcm && !x[i]) || n_samples[i] < e->min_samples) {
                clip_status[i] = d_pcm || x[i] ? ac_fail(AC_ERR_AUDIO, "too short for the encoder: %lld samples at "
                                                         "%d Hz (%.3f s); the model needs at least %lld (%.3f s)",
                                                         (long long)n_samples[i], c->frontend.sample_rate,
                                                         (double)n_samples[i] / c->frontend.sample_rate,
                                                         (long long)e->min_samples,
                                                         (double)e->min_samples / c->frontend.sample_rate)
                                               : ac_fail(AC_ERR_INVALID_ARG, "encoder: clip %d has no samples", i);
                if (d_pcm) {  // its samples stay in the packed PCM: a clip of no frames keeps the offsets right
                    for (int si = 0; si < AC_ENC_STAGES; si++) T[k * AC_ENC_STAGES + si] = 0;
                    idx[k++] = i;
                }
                continue;
            }
            int F[AC_ENC_STAGES];
            ac_enc_stage_dims(c, n_samples[i], T + k * AC_ENC_STAGES, F);
            idx[k++] = i;
            live++;
        }
        d.n = k;
        if (live > 0) {
            const int had_buffers = device_buffer_bytes(e) > 0;
            st = encode(g, e, k, kind, x, d_pcm, n_samples, idx, &d, T, off, memory);  // get_enc made the device current
            // Buffers kept from a larger batch, or the upload slot this call did not use, may hold the memory that
            // this batch needs: one retry from an empty encoder, so that a batch which fits one never fails for
            // them (seen in emulation: a device that ran out in the decoder at 2 clips then failed 1 clip here,
            // whose second upload slot no longer fitted beside the buffers sized for 2). Every allocation comes
            // before the call's first kernel, so nothing of the failed attempt runs.
            if (st == AC_ERR_NOMEM && had_buffers) {
                free_device_buffers(e);
                st = encode(g, e, k, kind, x, d_pcm, n_samples, idx, &d, T, off, memory);
            }
            if (st == AC_ERR_NOMEM) free_device_buffers(e);
        }
        if (!st) {
            // failed clips get an empty range at the position where they would have been
            int j = 0;
            for (int i = 0; i < n; i++) {
                mem_off[i] = live == 0 ? 0 : j < k ? off[4 * (k + 1) + j] : off[4 * (k + 1) + k];
                if (j < k && idx[j] == i) {
                    if (clip_status[i] == AC_OK) {
                        n_frames[i] = T[j * AC_ENC_STAGES + 4];
                        mem_len[i] = ac_enc_frame_len(c, n_samples[i], n_frames[i]);
                    }
                    j++;
                }
            }
        }
    }
done:
    free(idx);
    free(T);
    free(off);
    free(d.host);
    return st;
}

extern "C" ac_status ac_gpu_encode_ex(ac_gpu_model *g, int n, ac_pcm_kind kind, const void *const *x,
                                     const int64_t *n_samples, ac_gpu_dump_fn dump, void *dump_ctx,
                                     const float **memory, int64_t *mem_off, int *n_frames, int *mem_len,
                                     ac_status *clip_status) {
    if (memory) *memory = NULL;
    if (!g || n < 0 || !memory || (n > 0 && (!x || !n_samples || !mem_off || !n_frames || !mem_len || !clip_status)) ||
        (kind != AC_PCM_F32 && kind != AC_PCM_S16 && kind != AC_PCM_F32_PACK))
        return ac_fail(AC_ERR_INVALID_ARG, "encoder: %d clips, PCM kind %d or a NULL argument", n, (int)kind);
    if (n == 0) return AC_OK;
    return encode_call(g, n, kind, x, NULL, n_samples, dump, dump_ctx, memory, mem_off, n_frames, mem_len,
                       clip_status);
}

extern "C" ac_status ac_gpu_encode_resident(ac_gpu_model *g, int n, ac_pcm_kind kind, const void *d_pcm,
                                           const int64_t *n_samples, const float **memory, int64_t *mem_off,
                                           int *n_frames, int *mem_len, ac_status *clip_status) {
    if (memory) *memory = NULL;
    if (!g || n < 0 || !memory ||
        (n > 0 && (!d_pcm || !n_samples || !mem_off || !n_frames || !mem_len || !clip_status)) ||
        (kind != AC_PCM_F32 && kind != AC_PCM_S16))
        return ac_fail(AC_ERR_INVALID_ARG, "encoder (resident PCM): %d clips, PCM kind %d (float or int16) or a NULL "
                       "argument", n, (int)kind);
    if (n == 0) return AC_OK;
    for (int i = 0; i < n; i++)
        if (n_samples[i] < 0)
            return ac_fail(AC_ERR_INVALID_ARG, "encoder (resident PCM): clip %d has %lld samples", i,
                           (long long)n_samples[i]);
    ac_status st = ac_gpu_model_use(g);
    if (st) return st;
    // the kernels would read host memory, or another device's, as garbage or a fault: refuse it here instead
    int dev = -1;
    cudaPointerAttributes a;
    memset(&a, 0, sizeof a);
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaPointerGetAttributes(&a, d_pcm));
    if ((a.type != cudaMemoryTypeDevice && a.type != cudaMemoryTypeManaged) || a.device != dev)
        return ac_fail(AC_ERR_INVALID_ARG, "encoder (resident PCM): %p is not memory of device %d (type %d, device "
                       "%d) (hint: cudaMalloc the packed PCM on the model's device, or pass host clips to "
                       "ac_gpu_encode)", d_pcm, dev, (int)a.type, a.device);
    return encode_call(g, n, kind, NULL, d_pcm, n_samples, NULL, NULL, memory, mem_off, n_frames, mem_len,
                       clip_status);
}

extern "C" ac_status ac_gpu_encode(ac_gpu_model *g, int n, const float *const *x, const int64_t *n_samples,
                                   const float **memory, int64_t *mem_off, int *n_frames, int *mem_len,
                                   ac_status *clip_status) {
    return ac_gpu_encode_ex(g, n, AC_PCM_F32_PACK, (const void *const *)x, n_samples, NULL, NULL, memory, mem_off,
                            n_frames, mem_len, clip_status);
}
