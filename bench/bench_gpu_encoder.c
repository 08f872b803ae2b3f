// Benchmark: the CUDA encoder (kernels/gpu_encoder.h) on synthetic clips (noise + tones, 10 s at the model rate by
// default), one JSON line per (precision, batch, PCM source) on stdout, human text on stderr. Timed with CUDA
// events on the model's stream around --iters back-to-back encode calls after --warmup calls (time_batch), with
// the PCM
//   from the host ("gpu_encoder"): host packing and the PCIe upload inside the timed region, as in production
//     (the upload overlaps the previous batch's kernels: gpu_encoder.cu's copy stream);
//   from the device ("gpu_encoder_resident"): uploaded once, as the PyTorch reference's clips are and as issue #5
//     defines the throughput ("PCM already on the device").
// Exits 77 without a GPU.
// usage: bench_gpu_encoder MODEL [--precision fp32|bf16] [--batch 1,8,64,256,512] [--seconds 10] [--iters N]
//                                [--warmup N] [--pcm f32|s16] [--pcm-from host|device|both]
//
// "tflops": an analytic count from the model's config (2 FLOP per multiply-add), per clip:
//   front end  frames * (STFT + 3 (n_fft/2+1) [power] + 2 (n_fft/2+1) n_mels [mel]), STFT = 2.5 n_fft log2 n_fft
//              (real FFT) or 2 n_fft (n_fft + 2) (the DFT as a GEMM, fp32), in FP64; bf16's fft32 (FP32) counts
//              its mel as 4 (n_fft/2+1), each bin in at most two filters (AC_STFT overrides: logmel.h)
//   stem       tokens0 * C0 * 2 kt kf
//   blocks     tokens_s * (2 * 49 C_s [depthwise] + 2 * 8 C_s^2 [pwconv1 + pwconv2]) per block
//   downsample tokens_s * 2 * 4 C_{s-1} C_s
//   projection T' * 2 C3 D
// (LayerNorm, GELU, bias and residual element-wise work is not counted: < 1 % of the above.) A 10 s clip of the
// CoNeTTE config gives ~40 GFLOP, as performance.md §6.2 derives.
// "gbytes_per_s": analytic bytes over the same time: the minimum the implemented kernel sequence must move with a
// fused MLP: the PCM once; the front end's double frames, spectrum, power and mel written and read, the float
// log-mel written and read; per ConvNeXt block the residual stream read by the depthwise
// kernel (4 C), h written and read (2 or 4 bytes * C each), the residual read and written by the MLP (8 C); per
// downsample its input read, the im2col columns written and read, its output written; every weight once per batch.
// Unfused traffic (the GELU hidden tensor) is not counted, so an unfused MLP shows up as a low fraction of HBM
// bandwidth with a high time, not as more bytes.
#include "../kernels/device.h"
#include "../kernels/encoder_plan.h"
#include "../kernels/gpu_encoder.h"
#include "bench_util.h"
#include "status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    fprintf(stderr, "usage: bench_gpu_encoder MODEL [--precision fp32|bf16] [--batch 1,8,64,256,512] [--seconds 10] "
                    "[--iters N] [--warmup N] [--pcm f32|s16] [--pcm-from host|device|both]\n");
}

static void analytic(const ac_model_config *c, int64_t n_samples, ac_precision prec, double *flop, double *bytes,
                     double *weight_bytes) {
    int T[AC_ENC_STAGES], F[AC_ENC_STAGES];
    ac_enc_stage_dims(c, n_samples, T, F);
    const int *d = c->encoder.dims;
    const double nfft = c->frontend.n_fft, nb = nfft / 2 + 1, nm = c->frontend.n_mels, elt = prec ? 2 : 4;
    const ac_stft_method sm = ac_gpu_stft_method(prec);
    const int gemm = sm == AC_STFT_DFT_GEMM, f32 = sm == AC_STFT_FFT32;
    double fl = T[0] * ((gemm ? 2 * nfft * 2 * nb : 2.5 * nfft * log2(nfft)) + 3 * nb + (f32 ? 4 * nb : 2 * nb * nm));
    double by = 4.0 * n_samples + (f32 ? T[0] * (8 * nfft + 16 * nb + 8 * nm)
                                       : 2.0 * T[0] * (8 * nfft + 16 * nb + 8 * nb + 8 * nm + 4 * nm));
    double w = 0;
    const double tok0 = (double)T[1] * F[1];
    fl += tok0 * d[0] * 2.0 * c->encoder.stem_kernel[0] * c->encoder.stem_kernel[1];
    by += tok0 * d[0] * 4;
    for (int s = 0; s < 4; s++) {
        const double tok = (double)T[s + 1] * F[s + 1], C = d[s];
        if (s > 0) {
            const double tin = (double)T[s] * F[s], Ci = d[s - 1];
            fl += tok * 2 * 4 * Ci * C;
            by += tin * Ci * 4 + 2 * tok * 4 * Ci * elt + tok * C * 4;
            w += 4 * Ci * C * elt;
        }
        const int nbk = c->encoder.depths[s];
        fl += nbk * tok * (2 * 49 * C + 16 * C * C);
        by += nbk * tok * (4 * C + 2 * elt * C + 8 * C);
        w += nbk * (49 * C * 4 + 8 * C * C * elt);
    }
    fl += (double)T[4] * 2 * d[3] * c->decoder.d_model;
    by += (double)T[4] * (4.0 * d[3] + 4.0 * c->decoder.d_model);
    w += 4.0 * d[3] * c->decoder.d_model;
    *flop = fl;
    *bytes = by;
    *weight_bytes = w;
}

// ms per batch of B copies of one clip, over *iters back-to-back calls (0: as many as take ~0.5 s; the count used
// is returned there) after `warmup` ones. From the host (resident 0): ac_gpu_encode_ex gathers, packs and uploads
// every call, as a bulk run does. From the device (resident 1): the batch's PCM is uploaded once and
// ac_gpu_encode_resident reads it, as the PyTorch reference's benchmark (whose clips sit on the GPU) and the
// issues' definition (PCM already on the device) time it. The clock (CUDA events on
// the model's stream) starts behind the warm-up calls without draining them first, so the first timed call's host
// staging overlaps device work as every later one's does: a steady state, not one exposed gather per run.
static ac_status time_batch(ac_gpu_model *g, int B, int64_t ns, const void *clip, int s16, int resident, int warmup,
                            int *iters, double *ms_per_batch) {
    const size_t esz = s16 ? sizeof(int16_t) : sizeof(float);
    const void **xp = malloc(sizeof(void *) * B);
    int64_t *nsv = malloc(sizeof(int64_t) * B), *off = malloc(sizeof(int64_t) * B);
    int *nf = malloc(sizeof(int) * B), *ml = malloc(sizeof(int) * B);
    ac_status *cs = malloc(sizeof(ac_status) * B);
    char *dp = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    ac_status st = xp && nsv && off && nf && ml && cs ? AC_OK : ac_fail(AC_ERR_NOMEM, "host out of memory");
    for (int k = 0; !st && k < B; k++) {
        xp[k] = clip;
        nsv[k] = ns;
    }
    if (!st && resident) {
        cudaError_t e = cudaMalloc((void **)&dp, esz * (size_t)ns * B);
        for (int k = 0; e == cudaSuccess && k < B; k++)
            e = cudaMemcpy(dp + esz * (size_t)ns * k, clip, esz * (size_t)ns, cudaMemcpyHostToDevice);
        if (e != cudaSuccess) {
            (void)cudaGetLastError();
            st = ac_fail(e == cudaErrorMemoryAllocation ? AC_ERR_NOMEM : AC_ERR_CUDA, "the batch's PCM on the device: %s",
                         cudaGetErrorString(e));
        }
    }
    const ac_pcm_kind kind = s16 ? AC_PCM_S16 : AC_PCM_F32;
    const float *mem;
#define CALL()                                                                                                    \
    (resident ? ac_gpu_encode_resident(g, B, kind, dp, nsv, &mem, off, nf, ml, cs)                               \
              : ac_gpu_encode_ex(g, B, kind, xp, nsv, NULL, NULL, &mem, off, nf, ml, cs))
    for (int w = 0; w < warmup && !st; w++) st = CALL();
    cudaStream_t s = ac_gpu_stream(g);
    // iterations: as given, else ~0.5 s of work by one call timed on the wall clock (at least 3, at most 50), so
    // that gpu-check's sweeps cost seconds whatever the speed; then one more call left running, so that the
    // clock below starts with the device busy, as every later call finds it
    int it = *iters;
    if (it <= 0 && !st) {
        const double t0 = bench_now();
        st = CALL();
        if (!st && cudaStreamSynchronize(s) != cudaSuccess) st = ac_fail(AC_ERR_CUDA, "synchronise");
        it = (int)fmin(50, fmax(3, 0.5 / fmax(bench_now() - t0, 1e-6)));
    }
    if (!st) st = CALL();
    *iters = it;
    if (!st && (cudaEventCreate(&e0) != cudaSuccess || cudaEventCreate(&e1) != cudaSuccess ||
                cudaEventRecord(e0, s) != cudaSuccess))
        st = ac_fail(AC_ERR_CUDA, "timing events: %s", cudaGetErrorString(cudaGetLastError()));
    for (int i = 0; i < it && !st; i++) st = CALL();
#undef CALL
    float ms = 0;
    if (!st && (cudaEventRecord(e1, s) != cudaSuccess || cudaEventSynchronize(e1) != cudaSuccess ||
                cudaEventElapsedTime(&ms, e0, e1) != cudaSuccess))
        st = ac_fail(AC_ERR_CUDA, "timing events: %s", cudaGetErrorString(cudaGetLastError()));
    if (!st) st = cudaStreamSynchronize(s) == cudaSuccess ? AC_OK : ac_fail(AC_ERR_CUDA, "synchronise");
    *ms_per_batch = ms / it;
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    if (dp) cudaFree(dp);
    free(xp), free(nsv), free(off), free(nf), free(ml), free(cs);
    return st;
}

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') {
        usage();
        return 2;
    }
    const char *path = argv[1], *batches = "1,8,64,256,512";
    ac_precision prec = AC_PREC_BF16;
    double seconds = 10;
    int iters = 0, warmup = 2, s16 = 0, from_host = 1, from_device = 1;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            usage();
            return 2;
        }
        if (!strcmp(a, "--precision")) {
            if (!strcmp(v, "fp32")) prec = AC_PREC_FP32;
            else if (!strcmp(v, "bf16")) prec = AC_PREC_BF16;
            else {
                usage();
                return 2;
            }
        } else if (!strcmp(a, "--batch")) batches = v;
        else if (!strcmp(a, "--seconds")) seconds = atof(v);
        else if (!strcmp(a, "--iters")) iters = atoi(v);
        else if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else if (!strcmp(a, "--pcm")) s16 = !strcmp(v, "s16");
        else if (!strcmp(a, "--pcm-from")) {
            from_host = !strcmp(v, "host") || !strcmp(v, "both");
            from_device = !strcmp(v, "device") || !strcmp(v, "both");
            if (!from_host && !from_device) {
                usage();
                return 2;
            }
        }
        else {
            usage();
            return 2;
        }
        i++;
    }
    int ndev = 0;
    if (!ac_cuda_compiled() || ac_cuda_device_count(&ndev) != AC_OK || ndev == 0) {
        fprintf(stderr, "bench_gpu_encoder: no CUDA device: skipped\n");
        return 77;
    }
    ac_gpu_model *g = NULL;
    if (ac_gpu_model_load(path, 0, prec, &g) || ac_gpu_encoder_prepare(g)) {
        fprintf(stderr, "bench_gpu_encoder: %s\n", ac_last_error());
        ac_gpu_model_free(g);
        return 1;
    }
    const ac_model_config *c = ac_gpu_model_config(g);
    const int64_t ns = (int64_t)llround(seconds * c->frontend.sample_rate);
    if (ns < ac_gpu_encoder_min_samples(g)) {
        fprintf(stderr, "bench_gpu_encoder: --seconds %g is shorter than the model accepts\n", seconds);
        ac_gpu_model_free(g);
        return 2;
    }
    double flop, bytes, wbytes;
    analytic(c, ns, prec, &flop, &bytes, &wbytes);
    if (s16) bytes -= 2.0 * ns;
    fprintf(stderr, "%s on %s: %s, %s MLP, %.2f s clips (%lld samples, %s PCM): %.2f GFLOP, %.1f MB per clip "
            "(analytic)\n", path, ac_gpu_model_device_name(g), prec ? "bf16" : "fp32",
            ac_gpu_encoder_mlp_paths(g), seconds, (long long)ns, s16 ? "int16" : "float32",
            flop / 1e9, bytes / 1e6);
    // one synthetic clip, shared by every slot of the batch (the encoder copies each into its staging buffer)
    float *x = malloc(sizeof(float) * (size_t)ns);
    int16_t *xs = malloc(sizeof(int16_t) * (size_t)ns);
    uint64_t r = 88172645463325252ull;
    for (int64_t i = 0; i < ns; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        double t = (double)i / c->frontend.sample_rate;
        x[i] = (float)(0.05 * ((double)(r >> 11) / 9007199254740992.0 - 0.5) + 0.2 * sin(2 * M_PI * 440 * t) +
                       0.1 * sin(2 * M_PI * 3100 * t * (1 + 0.1 * t)));
        xs[i] = (int16_t)lrint(x[i] * 32767);
    }
    int rc = 0;
    char list[256];
    snprintf(list, sizeof list, "%s", batches);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        const int B = atoi(tok);
        if (B < 1) continue;
        for (int resident = 0; resident < 2; resident++) {
            if ((resident && !from_device) || (!resident && !from_host)) continue;
            double per = 0;
            int it = iters;
            const ac_status st = time_batch(g, B, ns, s16 ? (const void *)xs : (const void *)x, s16, resident, warmup,
                                            &it, &per);
            if (st) {
                fprintf(stderr, "batch %d%s: %s: %s\n", B, resident ? " (PCM on the device)" : "", ac_status_name(st),
                        ac_last_error());
                if (st != AC_ERR_NOMEM) rc = 1;
                continue;
            }
            const double cps = B / (per / 1e3), gbs = (cps * bytes + wbytes / (per / 1e3)) / 1e9;
            fprintf(stderr, "batch %4d, PCM from the %s: %9.3f ms per batch, %9.1f clips/s, %6.1f TFLOP/s, %7.1f GB/s "
                    "(%d iters)\n", B, resident ? "device" : "host  ", per, cps, cps * flop / 1e12, gbs, it);
            printf("{\"bench\":\"%s\",\"precision\":\"%s\",\"batch\":%d,\"seconds\":%g,\"pcm\":\"%s\","
                   "\"mlp\":\"%s\",\"stft\":\"%s\",\"clips_per_s\":%.2f,\"ms_per_batch\":%.4f,\"tflops\":%.3f,"
                   "\"gbytes_per_s\":%.2f,\"device\":\"%s\"}\n",
                   resident ? "gpu_encoder_resident" : "gpu_encoder", prec ? "bf16" : "fp32", B, seconds,
                   s16 ? "s16" : "f32", ac_gpu_encoder_mlp_paths(g),
                   ac_gpu_stft_name(ac_gpu_stft_method(prec)), cps, per, cps * flop / 1e12, gbs,
                   ac_gpu_model_device_name(g));
            fflush(stdout);
        }
    }
    free(x);
    free(xs);
    ac_gpu_model_free(g);
    return rc;
}
