// The CUDA encoder's kernels, each against its CPU counterpart in host/ref (the oracle), on random inputs over
// many shapes: odd T and F, C not a multiple of 32, packed batches of clips of mixed lengths (each clip's borders
// are its own). Every device output is poisoned with NaN (0xFF bytes) before the run, so an unwritten element
// fails. Errors are printed as a share of their budget (tests/tolerances.h).
// First, on any machine: the host-side planning (kernels/encoder_plan.h) against the CPU model's encoder, the
// STFT window recovery and the bn0 fold. Then, with a GPU: the kernels. Exits 77 after the host checks when there
// is no GPU. Usage: test_cuda_encoder_ops [TINY_MODEL] [TINY_DCASE_MODEL]
#include "fp16.h"
#include "../kernels/convnext_mlp.h"
#include "../kernels/decoder_linear.h"
#include "../kernels/device.h"
#include "../kernels/downsample.h"
#include "../kernels/dwconv_ln.h"
#include "../kernels/encoder_plan.h"
#include "../kernels/freq_mean.h"
#include "../kernels/linear.h"
#include "../kernels/logmel.h"
#include "../kernels/stem.h"
#include "model.h"
#include "ref/ref_logmel.h"
#include "ref/ref_ops.h"
#include "testutil.h"

#include <cublas_v2.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int checks;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float urand(void) {  // uniform [-1, 1)
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (2.0 / 16777216.0) - 1.0);
}
static float *rand_vec(size_t n, float scale) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) v[i] = urand() * scale;
    return v;
}

// ---- device helpers (abort the test on a CUDA failure: nothing after it would be meaningful) -------------------
#define DEV(expr)                                                                                                \
    do {                                                                                                         \
        cudaError_t e_ = (expr);                                                                                 \
        if (e_ != cudaSuccess) {                                                                                 \
            fprintf(stderr, "FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(e_));          \
            exit(1);                                                                                             \
        }                                                                                                        \
    } while (0)
static void *dpoison(size_t bytes) {
    void *p;
    DEV(cudaMalloc(&p, bytes ? bytes : 4));
    DEV(cudaMemset(p, 0xff, bytes ? bytes : 4));  // all-ones: NaN in float and in bf16
    return p;
}
static void *dup(const void *h, size_t bytes) {
    void *p;
    DEV(cudaMalloc(&p, bytes ? bytes : 4));
    if (bytes) DEV(cudaMemcpy(p, h, bytes, cudaMemcpyHostToDevice));
    return p;
}
static float *dget(const void *d, size_t n) {
    float *h = malloc(sizeof(float) * (n ? n : 1));
    DEV(cudaDeviceSynchronize());
    DEV(cudaMemcpy(h, d, sizeof(float) * n, cudaMemcpyDeviceToHost));
    return h;
}
// the block MLP's input h as the precision stores it: float, or fp16 (the MLP's operand type in BF16 mode)
static float *dget_h(const void *d, size_t n, ac_precision p) {
    if (p == AC_PREC_FP32) return dget(d, n);
    uint16_t *b = malloc(sizeof(uint16_t) * (n ? n : 1));
    DEV(cudaDeviceSynchronize());
    DEV(cudaMemcpy(b, d, sizeof(uint16_t) * n, cudaMemcpyDeviceToHost));
    float *h = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) h[i] = ac_f16_to_f32(b[i]);
    free(b);
    return h;
}
// max |got - ref| / max |ref|; infinite when got has a NaN (an unwritten element) or ref is all zero but got not
static double rel_err(const float *ref, const float *got, size_t n) {
    double md = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(got[i]) || isinf(got[i])) return INFINITY;
        double d = fabs((double)got[i] - ref[i]);
        if (d > md) md = d;
        if (fabs(ref[i]) > mr) mr = fabs(ref[i]);
    }
    return mr > 0 ? md / mr : md > 0 ? INFINITY : 0;
}

static void expect(const char *label, double err, double budget) {
    CHECK(report(label, err, budget, 0), "%s: %.3g > %.3g", label, err, budget);
    checks++;
}

static int *offsets(const int *T, int n) {
    int *o = malloc(sizeof(int) * (n + 1));
    o[0] = 0;
    for (int k = 0; k < n; k++) o[k + 1] = o[k] + T[k];
    return o;
}

// ---- host-side checks ---------------------------------------------------------------------------------------------
static void host_plan(const char *path) {
    ac_model *m = NULL;
    CHECK_OK(ac_model_load(path, &m));
    checks++;
    if (!m) return;
    const ac_model_config *c = ac_model_config_of(m);
    const ac_frontend *fe = ac_model_frontend(m);
    float *win = malloc(sizeof(float) * fe->n_fft);
    CHECK_OK(ac_stft_window_from_dft(fe->conv_real, fe->conv_imag, fe->n_fft, win));  // the GPU STFT accepts it
    free(win);
    CHECK(ac_enc_min_samples(c) == ac_model_min_samples(m), "%s: min samples %lld vs %lld", path,
          (long long)ac_enc_min_samples(c), (long long)ac_model_min_samples(m));
    checks++;
    const int64_t mn = ac_model_min_samples(m), hop = c->frontend.hop;
    const int64_t lens[] = {mn, mn + 1, mn + hop - 1, 3 * mn + 7, 4 * hop * 8 + 3, 32000, 32001, 51234};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        float *x = rand_vec((size_t)lens[i], 0.3f), *mem = NULL;
        int nf = 0, ml = 0;
        CHECK_OK(ac_model_encode(m, x, lens[i], NULL, NULL, &mem, &nf, &ml));
        int T[AC_ENC_STAGES], F[AC_ENC_STAGES];
        ac_enc_stage_dims(c, lens[i], T, F);
        CHECK(T[4] == nf && ac_enc_frame_len(c, lens[i], T[4]) == ml, "%s n=%lld: plan %d frames / len %d, CPU %d / %d",
              path, (long long)lens[i], T[4], ac_enc_frame_len(c, lens[i], T[4]), nf, ml);
        CHECK(T[0] == ac_frontend_n_frames(ac_model_frontend(m), lens[i]), "log-mel frames");
        checks += 3;
        free(x);
        free(mem);
    }
    // too short for the CPU model <=> too short for the plan
    float *x = rand_vec((size_t)mn, 0.3f), *mem = NULL;
    int nf, ml;
    CHECK(ac_model_encode(m, x, mn - 1, NULL, NULL, &mem, &nf, &ml) == AC_ERR_AUDIO, "min - 1 accepted by the CPU");
    checks++;
    free(x);
    free(mem);
    // offsets of a packed batch
    int Ts[3 * AC_ENC_STAGES], off[AC_ENC_STAGES * 4];
    for (int k = 0; k < 3; k++) ac_enc_stage_dims(c, lens[k * 2 + 1], Ts + k * AC_ENC_STAGES, (int[AC_ENC_STAGES]){0});
    CHECK(ac_enc_offsets(3, Ts, off) == 0, "offsets");
    for (int s = 0; s < AC_ENC_STAGES; s++) {
        CHECK(off[s * 4] == 0 && off[s * 4 + 1] == Ts[s] && off[s * 4 + 2] == Ts[s] + Ts[AC_ENC_STAGES + s] &&
                  off[s * 4 + 3] == off[s * 4 + 2] + Ts[2 * AC_ENC_STAGES + s],
              "stage %d offsets", s);
        checks++;
    }
    ac_model_free(m);
}

static void host_frontend(void) {
    ac_frontend fe;
    CHECK_OK(ac_frontend_init_default(&fe));
    const int n = fe.n_fft;
    float *w = malloc(sizeof(float) * n);
    CHECK_OK(ac_stft_window_from_dft(fe.conv_real, fe.conv_imag, n, w));
    double worst = 0;
    for (int i = 0; i < n; i++) worst = fmax(worst, fabs(w[i] - (0.5 - 0.5 * cos(2 * M_PI * i / n))));
    CHECK(worst < 1e-7, "window recovered to %.3g", worst);
    fe.conv_real[(size_t)5 * n + 17] += 1e-3f;  // not a windowed DFT any more
    CHECK(ac_stft_window_from_dft(fe.conv_real, fe.conv_imag, n, w) == AC_ERR_FORMAT, "perturbed DFT accepted");
    checks += 3;
    // bn0 fold: bit-identical to ac_bn0_ref
    const int nm = fe.n_mels, T = 7;
    float *bw = rand_vec(nm, 1), *bb = rand_vec(nm, 1), *bm = rand_vec(nm, 5), *bv = rand_vec(nm, 1);
    for (int i = 0; i < nm; i++) bv[i] = fabsf(bv[i]) + 0.1f;
    fe.bn0_weight = bw;
    fe.bn0_bias = bb;
    fe.bn0_running_mean = bm;
    fe.bn0_running_var = bv;
    float *x = rand_vec((size_t)T * nm, 50), *y = malloc(sizeof(float) * T * nm), al[1024], be[1024];
    memcpy(y, x, sizeof(float) * T * nm);
    CHECK_OK(ac_bn0_ref(&fe, y, T));
    ac_bn0_fold(bw, bb, bm, bv, fe.bn_eps, nm, al, be);
    int same = 1;
    for (int t = 0; t < T; t++)
        for (int m = 0; m < nm; m++) same &= x[t * nm + m] * al[m] + be[m] == y[t * nm + m];
    CHECK(same, "bn0 fold differs from ac_bn0_ref");
    checks += 2;
    fe.bn0_weight = fe.bn0_bias = fe.bn0_running_mean = fe.bn0_running_var = NULL;
    free(bw), free(bb), free(bm), free(bv), free(x), free(y), free(w);
    ac_frontend_free(&fe);
}

// ---- GPU kernels ---------------------------------------------------------------------------------------------------
static cublasHandle_t blas;

// clip kinds: loud noise, quiet noise, tones below 3 kHz (the bins above hold only window leakage: deep bins).
// chunk: the plan's rows per chunk (0: its default, one chunk here; 7: chunks that cut clips at odd frames, and
// cuFFT batches of 7).
static void gpu_logmel(const ac_frontend *fe0, int random_bn, ac_stft_method method, int chunk, const char *label0) {
    char label[64];
    snprintf(label, sizeof label, "%s%s", label0, chunk ? " chunk-7" : "");
    ac_frontend fe = *fe0;
    const int nm = fe.n_mels, nfft = fe.n_fft;
    float *bw = NULL, *bb = NULL, *bm = NULL, *bv = NULL;
    if (random_bn) {
        bw = rand_vec(nm, 1), bb = rand_vec(nm, 1), bm = rand_vec(nm, 20), bv = rand_vec(nm, 30);
        for (int i = 0; i < nm; i++) bv[i] = fabsf(bv[i]) + 1;
        fe.bn0_weight = bw, fe.bn0_bias = bb, fe.bn0_running_mean = bm, fe.bn0_running_var = bv;
    }
    float *win = malloc(sizeof(float) * nfft), *al = malloc(sizeof(float) * nm), *be = malloc(sizeof(float) * nm);
    CHECK_OK(ac_stft_window_from_dft(fe.conv_real, fe.conv_imag, nfft, win));
    ac_bn0_fold(fe.bn0_weight, fe.bn0_bias, fe.bn0_running_mean, fe.bn0_running_var, fe.bn_eps, nm, al, be);
    ac_logmel_params p = {nfft, fe.hop, nm, fe.amin, method, fe.conv_real, fe.conv_imag, win, al, be, fe.melW, blas, 0,
                          chunk};
    ac_logmel_plan *plan = NULL;
    CHECK_OK(ac_logmel_plan_create(&p, &plan));
    checks++;
    // the scratch is a chunk's, whatever the batch: 256 10 s clips (256,256 frames) need no more than 16,384
    CHECK(ac_logmel_workspace(plan, 256256) == ac_logmel_workspace(plan, chunk ? chunk : 16384) &&
              ac_logmel_workspace(plan, 256256) < ((size_t)300 << 20),
          "%s: log-mel workspace for 256,256 frames: %zu bytes, for one chunk %zu", label,
          ac_logmel_workspace(plan, 256256), ac_logmel_workspace(plan, chunk ? chunk : 16384));
    checks++;
    const int64_t mn = ac_frontend_min_samples(&fe);
    const int64_t lens[] = {mn, 3 * fe.hop + 1, mn + 17, 7 * fe.hop, fe.sample_rate / 2 + 3, mn + 1};
    const int n = sizeof lens / sizeof lens[0];
    for (int kind = 0; kind < 2; kind++) {
        int64_t tot = 0, R = 0, pcm_off[8];
        int T[8];
        for (int k = 0; k < n; k++) {
            pcm_off[k] = tot;
            tot += lens[k];
            T[k] = (int)ac_frontend_n_frames(&fe, lens[k]);
            R += T[k];
        }
        pcm_off[n] = tot;
        int *foff = offsets(T, n);
        float *xf = malloc(sizeof(float) * tot);
        int16_t *xs = malloc(sizeof(int16_t) * tot);
        for (int k = 0; k < n; k++) {
            for (int64_t i = 0; i < lens[k]; i++) {
                const double t = (double)i / fe.sample_rate;
                float v = k % 3 == 0   ? urand() * 0.5f
                          : k % 3 == 1 ? urand() * 0.01f
                                       : (float)(0.3 * sin(2 * M_PI * 440 * t) + 0.2 * sin(2 * M_PI * 2900 * t + 1));
                xs[pcm_off[k] + i] = (int16_t)lrintf(v * 32767);
                xf[pcm_off[k] + i] = kind ? xs[pcm_off[k] + i] / 32768.0f : v;
            }
        }
        void *dpcm = kind ? dup(xs, sizeof(int16_t) * tot) : dup(xf, sizeof(float) * tot);
        int64_t *doff = dup(pcm_off, sizeof(int64_t) * (n + 1));
        int *dfo = dup(foff, sizeof(int) * (n + 1));
        size_t wsb = ac_logmel_workspace(plan, R);
        void *ws = dpoison(wsb);
        float *dl = dpoison(sizeof(float) * R * nm), *db = dpoison(sizeof(float) * R * nm);
        CHECK_OK(ac_logmel_run(plan, kind ? AC_PCM_S16 : AC_PCM_F32, dpcm, doff, dfo, n, R, ws, wsb, dl, db));
        float *gl = dget(dl, (size_t)R * nm), *gb = dget(db, (size_t)R * nm);
        // dB error: TOL_LOGMEL_DB where the reference is above the floor and within the dynamic range of its
        // frame's peak, TOL_LOGMEL_DEEP_DB elsewhere (tolerances.h); the DFT-GEMM method must meet the strict
        // budget everywhere (it is ref_logmel.c's arithmetic)
        double db_err = 0, deep_err = 0, bn_err = 0;
        for (int k = 0; k < n; k++) {
            float *rl = malloc(sizeof(float) * T[k] * nm);
            CHECK_OK(ac_logmel_ref(&fe, xf + pcm_off[k], lens[k], rl, T[k]));
            for (int t = 0; t < T[k]; t++) {
                float peak = -INFINITY;
                for (int m = 0; m < nm; m++) peak = fmaxf(peak, rl[t * nm + m]);
                for (int m = 0; m < nm; m++) {
                    const float r = rl[t * nm + m], gv = gl[((size_t)foff[k] + t) * nm + m];
                    double d = isnan(gv) ? INFINITY : fabs((double)gv - r);
                    int deep = method != AC_STFT_DFT_GEMM &&
                               (r < TOL_LOGMEL_FLOOR_DB || r < peak - TOL_LOGMEL_DYN_RANGE_DB);
                    if (deep) deep_err = fmax(deep_err, d);
                    else db_err = fmax(db_err, d);
                }
            }
            CHECK_OK(ac_bn0_ref(&fe, rl, T[k]));
            bn_err = fmax(bn_err, rel_err(rl, gb + (size_t)foff[k] * nm, (size_t)T[k] * nm));
            free(rl);
        }
        char l1[128], l2[128], l3[128];
        const char *mname = method == AC_STFT_FFT ? "fft" : method == AC_STFT_FFT32 ? "fft32" : "dft-gemm";
        snprintf(l1, sizeof l1, "%s %s %s log-mel max |dB diff|", label, mname, kind ? "s16" : "f32");
        snprintf(l2, sizeof l2, "%s %s %s log-mel deep bins max |dB diff|", label, mname, kind ? "s16" : "f32");
        snprintf(l3, sizeof l3, "%s %s %s bn0 rel", label, mname, kind ? "s16" : "f32");
        expect(l1, db_err, TOL_GPU_LOGMEL_DB);
        if (method != AC_STFT_DFT_GEMM) expect(l2, deep_err, TOL_LOGMEL_DEEP_DB);
        // bn0 = logmel * alpha + beta: the dB error times |alpha| over a ~100 dB scale, plus float rounding
        expect(l3, bn_err, method != AC_STFT_DFT_GEMM ? TOL_FRONTEND_STAGE_REL : TOL_GPU_OP_REL);
        cudaFree(dpcm), cudaFree(doff), cudaFree(dfo), cudaFree(ws), cudaFree(dl), cudaFree(db);
        free(gl), free(gb), free(xf), free(xs), free(foff);
    }
    ac_logmel_plan_free(plan);
    free(win), free(al), free(be), free(bw), free(bb), free(bm), free(bv);
}

static void gpu_stem(const int *T, int n, int F, int kt, int kf, int pt, int pf, int C0) {
    int *fo = offsets(T, n), T0[16];
    for (int k = 0; k < n; k++) T0[k] = (T[k] + 2 * pt - kt) / kt + 1;
    int *fo0 = offsets(T0, n);
    const int F0 = (F + 2 * pf - kf) / kf + 1;
    float *x = rand_vec((size_t)fo[n] * F, 3), *w = rand_vec((size_t)C0 * kt * kf, 0.5f), *b = rand_vec(C0, 0.5f);
    float *lw = rand_vec(C0, 1), *lb = rand_vec(C0, 1);
    float *dx = dup(x, sizeof(float) * fo[n] * F), *dw = dup(w, sizeof(float) * C0 * kt * kf), *db = dup(b, 4 * C0);
    float *dlw = dup(lw, 4 * C0), *dlb = dup(lb, 4 * C0), *dy = dpoison(sizeof(float) * fo0[n] * F0 * C0);
    int *dfo = dup(fo, sizeof(int) * (n + 1)), *dfo0 = dup(fo0, sizeof(int) * (n + 1));
    float *dwt = dpoison(sizeof(float) * C0 * kt * kf);
    CHECK_OK(ac_stem_weight_t(dw, C0, kt * kf, dwt, 0));
    CHECK_OK(ac_stem_conv_ln(dx, dfo, dfo0, n, fo0[n], F, kt, kf, pt, pf, dwt, db, dlw, dlb, C0, 1e-6f, dy, 0));
    float *gy = dget(dy, (size_t)fo0[n] * F0 * C0);
    double err = 0;
    for (int k = 0; k < n; k++) {
        float *ry = malloc(sizeof(float) * T0[k] * F0 * C0);
        int t0, f0;
        ref_conv2d_patch(x + (size_t)fo[k] * F, T[k], F, 1, w, b, C0, kt, kf, pt, pf, ry, &t0, &f0);
        ref_layernorm(ry, (int64_t)t0 * f0, C0, lw, lb, 1e-6f);
        CHECK(t0 == T0[k] && f0 == F0, "stem dims");
        err = fmax(err, rel_err(ry, gy + (size_t)fo0[k] * F0 * C0, (size_t)t0 * f0 * C0));
        free(ry);
    }
    char l[128];
    snprintf(l, sizeof l, "stem %dx%d pad %d,%d F %d C0 %d, %d clips", kt, kf, pt, pf, F, C0, n);
    expect(l, err, TOL_GPU_OP_REL);
    cudaFree(dx), cudaFree(dw), cudaFree(dwt), cudaFree(db), cudaFree(dlw), cudaFree(dlb), cudaFree(dy), cudaFree(dfo);
    cudaFree(dfo0);
    free(fo), free(fo0), free(x), free(w), free(b), free(lw), free(lb), free(gy);
}

static void gpu_dwconv(const int *T, int n, int F, int C, ac_precision prec) {
    int *fo = offsets(T, n);
    const size_t N = (size_t)fo[n] * F;
    float *x = rand_vec(N * C, 2), *w = rand_vec((size_t)C * 49, 0.3f), *b = rand_vec(C, 0.5f);
    float *lw = rand_vec(C, 1), *lb = rand_vec(C, 1);
    float *dx = dup(x, sizeof(float) * N * C), *dw = dup(w, sizeof(float) * C * 49), *dw49 = dpoison(4 * 49 * C);
    float *db = dup(b, 4 * C), *dlw = dup(lw, 4 * C), *dlb = dup(lb, 4 * C);
    int *dfo = dup(fo, sizeof(int) * (n + 1));
    void *dh = dpoison((prec == AC_PREC_BF16 ? 2 : 4) * N * C);
    CHECK_OK(ac_dwconv7_weight_t(dw, C, dw49, 0));
    CHECK_OK(ac_dwconv7_ln(prec, dx, dfo, n, fo[n], F, C, dw49, db, dlw, dlb, 1e-6f, dh, 0));
    float *gh = dget_h(dh, N * C, prec);
    double err = 0;
    for (int k = 0; k < n; k++) {
        float *ry = malloc(sizeof(float) * T[k] * F * C);
        ref_dwconv7(x + (size_t)fo[k] * F * C, T[k], F, C, w, b, ry);
        ref_layernorm(ry, (int64_t)T[k] * F, C, lw, lb, 1e-6f);
        err = fmax(err, rel_err(ry, gh + (size_t)fo[k] * F * C, (size_t)T[k] * F * C));
        free(ry);
    }
    char l[128];
    snprintf(l, sizeof l, "dwconv7+LN %s F %d C %d, %d clips", prec ? "fp16 out" : "fp32", F, C, n);
    expect(l, err, prec ? TOL_GPU_FP16_OP_REL : TOL_GPU_OP_REL);
    cudaFree(dx), cudaFree(dw), cudaFree(dw49), cudaFree(db), cudaFree(dlw), cudaFree(dlb), cudaFree(dfo), cudaFree(dh);
    free(fo), free(x), free(w), free(b), free(lw), free(lb), free(gh);
}

static void gpu_downsample(const int *T, int n, int F, int Cin, int Cout, ac_precision prec) {
    int *fo = offsets(T, n), To[16];
    for (int k = 0; k < n; k++) To[k] = T[k] / 2;
    int *foo = offsets(To, n);
    const int Fo = F / 2;
    const size_t N = (size_t)fo[n] * F, No = (size_t)foo[n] * Fo, nw = (size_t)Cout * Cin * 4;
    float *x = rand_vec(N * Cin, 2), *w = rand_vec((size_t)Cout * Cin * 4, 0.2f), *b = rand_vec(Cout, 0.5f);
    float *lw = rand_vec(Cin, 1), *lb = rand_vec(Cin, 1);
    float *dx = dup(x, 4 * N * Cin), *dw = dup(w, 4 * (size_t)Cout * Cin * 4), *db = dup(b, 4 * Cout);
    float *dlw = dup(lw, 4 * Cin), *dlb = dup(lb, 4 * Cin), *dwr = dpoison(4 * (size_t)Cout * Cin * 4);
    void *dwb = prec == AC_PREC_BF16 ? dpoison(2 * nw) : NULL, *dwlo = prec == AC_PREC_BF16 ? dpoison(2 * nw) : NULL;
    float *dcols = dpoison(4 * No * 4 * Cin);
    float *dy = dpoison(4 * No * Cout);
    int *dfo = dup(fo, sizeof(int) * (n + 1)), *dfoo = dup(foo, sizeof(int) * (n + 1));
    CHECK_OK(ac_downsample_weight_reorder(dw, Cout, Cin, dwr, dwb, 0));
    // as the encoder runs it: fp32 columns, then FP32 tiles or (BF16 mode) the split product on bf16 halves
    if (dwlo) CHECK_OK(ac_gpu_bf16_split_lo(dwr, dwb, (int64_t)nw, dwlo, 0));
    CHECK_OK(ac_downsample_ln_im2col(dx, dfo, dfoo, n, foo[n], F, Cin, dlw, dlb, 1e-6f, dcols, 0));
    CHECK_OK(ac_gpu_linear(dcols, (int)No, NULL, 4 * Cin, dwr, dwb, dwlo, db, Cout, 0, dy, 0));
    float *gy = dget(dy, No * Cout);
    double err = 0;
    for (int k = 0; k < n; k++) {
        float *xc = malloc(sizeof(float) * T[k] * F * Cin), *ry = malloc(sizeof(float) * (To[k] * Fo * Cout + 1));
        memcpy(xc, x + (size_t)fo[k] * F * Cin, sizeof(float) * T[k] * F * Cin);
        ref_layernorm(xc, (int64_t)T[k] * F, Cin, lw, lb, 1e-6f);
        int t1, f1;
        ref_conv2d_patch(xc, T[k], F, Cin, w, b, Cout, 2, 2, 0, 0, ry, &t1, &f1);
        CHECK(t1 == To[k] && f1 == Fo, "downsample dims");
        err = fmax(err, rel_err(ry, gy + (size_t)foo[k] * Fo * Cout, (size_t)t1 * f1 * Cout));
        free(xc), free(ry);
    }
    char l[128];
    snprintf(l, sizeof l, "downsample %s F %d %d->%d, %d clips", prec ? "bf16 split" : "fp32", F, Cin, Cout, n);
    expect(l, err, prec ? TOL_GPU_LINEAR_SPLIT_REL : TOL_GPU_OP_REL);
    cudaFree(dx), cudaFree(dw), cudaFree(db), cudaFree(dlw), cudaFree(dlb), cudaFree(dwr), cudaFree(dwb);
    cudaFree(dwlo);
    cudaFree(dcols), cudaFree(dy), cudaFree(dfo), cudaFree(dfoo);
    free(fo), free(foo), free(x), free(w), free(b), free(lw), free(lb), free(gy);
}

static void gpu_freq_mean(int frames, int F, int C) {
    float *x = rand_vec((size_t)frames * F * C, 3), *r = malloc(sizeof(float) * frames * C);
    for (int g = 0; g < frames; g++)
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int f = 0; f < F; f++) s += x[((size_t)g * F + f) * C + c];
            r[(size_t)g * C + c] = (float)(s / F);
        }
    float *dx = dup(x, 4 * (size_t)frames * F * C), *dy = dpoison(4 * (size_t)frames * C);
    CHECK_OK(ac_freq_mean(dx, frames, F, C, dy, 0));
    float *gy = dget(dy, (size_t)frames * C);
    char l[128];
    snprintf(l, sizeof l, "frequency mean %d frames F %d C %d", frames, F, C);
    expect(l, rel_err(r, gy, (size_t)frames * C), TOL_GPU_OP_REL);
    cudaFree(dx), cudaFree(dy), free(x), free(r), free(gy);
}

// the projection's linear (fp32 in both precisions)
static void gpu_linear(int M, int K, int N, int relu) {
    float *x = rand_vec((size_t)M * K, 1), *w = rand_vec((size_t)N * K, 0.3f), *b = rand_vec(N, 1);
    float *r = malloc(sizeof(float) * ((size_t)M * N + 1));
    ref_linear(x, M, K, w, b, N, r);
    if (relu) ref_relu(r, (int64_t)M * N);
    float *dx = dup(x, 4 * (size_t)M * K), *dw = dup(w, 4 * (size_t)N * K);
    float *db = dup(b, 4 * N), *dy = dpoison(4 * (size_t)M * N);
    CHECK_OK(ac_linear(M, K, N, dx, dw, NULL, NULL, db, relu, dy, 0));
    float *gy = dget(dy, (size_t)M * N);
    char l[128];
    snprintf(l, sizeof l, "linear%s fp32 %dx%d->%d", relu ? "+ReLU" : "", M, K, N);
    expect(l, rel_err(r, gy, (size_t)M * N), TOL_GPU_OP_REL);
    cudaFree(dx), cudaFree(dw), cudaFree(db), cudaFree(dy), free(x), free(w), free(b), free(r), free(gy);
}

// The block MLP (kernels/convnext_mlp.h, the gpu-mlp branch's; its own test checks it against double) against the
// CPU ops the oracle chains: both entry points, as the encoder calls them.
static void gpu_mlp(int N, int C, ac_precision prec, int unfused) {
    float *h = rand_vec((size_t)N * C, 1.5f), *w1 = rand_vec((size_t)4 * C * C, 0.2f), *b1 = rand_vec(4 * C, 0.3f);
    float *w2 = rand_vec((size_t)4 * C * C, 0.1f), *b2 = rand_vec(C, 0.3f), *gm = rand_vec(C, 0.5f);
    float *x = rand_vec((size_t)N * C, 2);
    float *a = malloc(sizeof(float) * N * 4 * C), *t = malloc(sizeof(float) * N * C), *r = malloc(sizeof(float) * N * C);
    ref_linear(h, N, C, w1, b1, 4 * C, a);
    ref_gelu_erf(a, (int64_t)N * 4 * C);
    ref_linear(a, N, 4 * C, w2, b2, C, t);
    for (size_t i = 0; i < (size_t)N * C; i++) r[i] = x[i] + gm[i % C] * t[i];
    // as the encoder feeds it: h from dwconv7+LN in the MLP's operand type (fp16 in BF16 mode), the weights the
    // model's fp32 copies or, in BF16 mode, fp16 copies made by ac_convnext_mlp_weight
    const size_t nw = (size_t)4 * C * C;
    void *dh, *dw1 = dup(w1, 4 * nw), *dw2 = dup(w2, 4 * nw);
    if (prec == AC_PREC_BF16) {
        uint16_t *hb = malloc(sizeof(uint16_t) * (size_t)N * C);
        for (size_t i = 0; i < (size_t)N * C; i++) hb[i] = ac_f32_to_f16(h[i]);
        dh = dup(hb, 2 * (size_t)N * C);
        free(hb);
        void *w1o = dpoison(2 * nw), *w2o = dpoison(2 * nw);
        CHECK_OK(ac_convnext_mlp_weight("pwconv1", dw1, (int64_t)nw, w1o, 0));
        CHECK_OK(ac_convnext_mlp_weight("pwconv2", dw2, (int64_t)nw, w2o, 0));
        cudaFree(dw1), cudaFree(dw2);
        dw1 = w1o, dw2 = w2o;
    } else
        dh = dup(h, 4 * (size_t)N * C);
    float *db1 = dup(b1, 16 * C), *db2 = dup(b2, 4 * C), *dg = dup(gm, 4 * C), *dx = dup(x, 4 * (size_t)N * C);
    size_t wsb = ac_convnext_mlp_workspace(prec, N, C);
    void *ws = dpoison(wsb);
    if (unfused) CHECK_OK(ac_convnext_mlp_unfused(prec, N, C, dh, dw1, db1, dw2, db2, dg, dx, ws, wsb, 0));
    else CHECK_OK(ac_convnext_mlp(prec, N, C, dh, dw1, db1, dw2, db2, dg, dx, ws, wsb, 0));
    float *gx = dget(dx, (size_t)N * C);
    // the budget applies to the branch (x_new - x), which carries all of the error
    for (size_t i = 0; i < (size_t)N * C; i++) {
        r[i] -= x[i];
        gx[i] -= x[i];
    }
    char l[128];
    snprintf(l, sizeof l, "%s MLP %s N %d C %d (branch)", unfused ? "unfused" : "ac_convnext_mlp",
             prec ? "fp16" : "fp32", N, C);
    expect(l, rel_err(r, gx, (size_t)N * C), prec ? TOL_GPU_FP16_OP_REL : TOL_GPU_OP_REL);
    cudaFree(dh), cudaFree(dw1), cudaFree(dw2), cudaFree(db1), cudaFree(db2), cudaFree(dg), cudaFree(dx), cudaFree(ws);
    free(h), free(w1), free(b1), free(w2), free(b2), free(gm), free(x), free(a), free(t), free(r), free(gx);
}

int main(int argc, char **argv) {
    const char *tiny = argc > 1 ? argv[1] : AC_TEST_BIN "/fixture-tiny.safetensors";
    const char *dcase = argc > 2 ? argv[2] : AC_TEST_BIN "/fixture-tiny-dcase.safetensors";
    host_plan(tiny);
    host_plan(dcase);
    host_frontend();
    int ndev = 0;
    if (g_failures || !ac_cuda_compiled() || ac_cuda_device_count(&ndev) != AC_OK || ndev == 0) {
        if (g_failures) return test_finish("test_cuda_encoder_ops", checks);
        printf("test_cuda_encoder_ops: host checks passed (%d); no CUDA device: GPU checks skipped\n", checks);
        return AC_SKIP;
    }
    DEV(cudaSetDevice(0));
    if (cublasCreate(&blas) != CUBLAS_STATUS_SUCCESS || cublasSetMathMode(blas, CUBLAS_PEDANTIC_MATH)) {
        fprintf(stderr, "FAIL: cublasCreate\n");
        return 1;
    }
    // front end: the tiny model's constants (n_fft 128) and the CoNeTTE defaults (1024, 224 mels, random bn0)
    ac_model *m = NULL;
    CHECK_OK(ac_model_load(tiny, &m));
    ac_frontend fe;
    CHECK_OK(ac_frontend_init_default(&fe));
    for (int method = 0; method < 3; method++)
        for (int chunk = 0; chunk <= 7; chunk += 7) {
            if (m) gpu_logmel(ac_model_frontend(m), 0, (ac_stft_method)method, chunk, "tiny");
            gpu_logmel(&fe, 1, (ac_stft_method)method, chunk, "conette");
        }
    ac_frontend_free(&fe);
    ac_model_free(m);

    const int Ta[] = {1, 7, 2, 13, 4, 5}, Tb[] = {3}, Tc[] = {9, 1, 1, 6};
    gpu_stem(Ta, 6, 32, 4, 4, 4, 0, 8);
    gpu_stem(Tc, 4, 35, 4, 4, 4, 0, 96);    // F not a multiple of the kernel: the last columns are dropped
    gpu_stem(Tb, 1, 224, 4, 4, 4, 0, 96);   // the real stem's shape
    gpu_stem(Ta, 6, 17, 3, 2, 1, 1, 45);
    for (int prec = 0; prec < 2; prec++) {
        gpu_dwconv(Ta, 6, 8, 8, prec);
        gpu_dwconv(Tc, 4, 7, 33, prec);
        gpu_dwconv(Tb, 1, 1, 96, prec);
        gpu_dwconv(Ta, 6, 3, 200, prec);
        gpu_dwconv(Tc, 4, 14, 384, prec);
        gpu_dwconv(Tb, 1, 7, 768, prec);
        gpu_dwconv(Tb, 1, 56, 96, prec);   // stage 1 of ConvNeXt-Tiny: 8 strips of 7 columns per row
        gpu_dwconv(Tb, 1, 64, 400, prec);  // a row over the kernel's shared-memory cap: two column chunks
        gpu_dwconv(Ta, 6, 28, 192, prec);  // stage 2: interior strips with the compile-time C = 192
        gpu_dwconv(Tb, 1, 56, 768, prec);  // compile-time C with the row in chunks of 28 columns (strips per chunk)
        const int Td[] = {2, 7, 4, 3, 13}, Te[] = {31, 2};
        gpu_downsample(Td, 5, 8, 8, 16, prec);
        gpu_downsample(Te, 2, 7, 33, 20, prec);  // odd F and T: the last row/column are dropped
        gpu_downsample(Td, 5, 56, 96, 192, prec);
        for (int u = 0; u < 2; u++) {
            gpu_mlp(61, 8, prec, u);
            gpu_mlp(203, 24, prec, u);
            gpu_mlp(517, 96, prec, u);
            gpu_mlp(129, 192, prec, u);
        }
    }
    gpu_linear(37, 24, 8, 1);
    gpu_linear(301, 768, 256, 0);
    gpu_linear(31 * 5 + 2, 768, 256, 1);  // the projection's shape
    gpu_freq_mean(1, 1, 32);
    gpu_freq_mean(77, 7, 768);
    gpu_freq_mean(13, 2, 33);
    cublasDestroy(blas);
    return test_finish("test_cuda_encoder_ops", checks);
}
