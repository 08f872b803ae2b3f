// Whole captioning on the device from PCM already decoded (float clips at the model rate: synthetic noise and
// chirps of 10 s), per batch size: clips/s end to end and the encoder's and decoder's times (CUDA events on the
// model's stream, kernels/gpu_caption.h), with the clips in host memory ("gpu_caption": gathered and uploaded
// every call, as in production) and already on the device ("gpu_caption_resident": uploaded once, as the PyTorch
// reference's benchmark holds them and as issue #6 defines the figure). One JSON line per configuration:
//   {"bench":"gpu_caption","precision":"bf16","beam":3,"batch":256,"clips_per_s":..,"encoder_ms":..,
//    "decoder_ms":..,"decoder_enqueue_ms":..,"steps":..,"device":".."}
// encoder_ms / decoder_ms / steps are per call (one batch), averaged over the timed calls (encoder_ms of host
// clips includes their staging on the host); decoder_enqueue_ms is the host's time issuing the decoder's launches
// (near decoder_ms: launch-bound, the case for AC_GPU_GRAPH); "graph" is 1 when AC_GPU_GRAPH=1 made the decoder replay CUDA graphs;
// "linear_tile" is the decoder linears' BF16 tile when AC_LINEAR_TILE forced one ("auto": the launcher's choice).
//   bench_gpu_caption MODEL [--precision fp32|bf16] [--beam 3] [--batch 64,256,1024] [--seconds 4] [--iters N]
//                           [--pcm-from host|device|both]
// Exits 77 without a GPU. Targets (issue #6): >= 6,000 clips/s on an H100, decoding <= 25 % of encoder time.
#include "bench_util.h"
#include "../kernels/device.h"
#include "../kernels/gpu_caption.h"

#include <cuda_runtime_api.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(const char *a0) {
    fprintf(stderr,
            "usage: %s MODEL [--precision fp32|bf16] [--beam 3] [--batch 64,256,1024] [--seconds 4] [--iters N]\n"
            "          [--pcm-from host|device|both]\n"
            "  --seconds: time per batch size (after one warm-up call); --iters: at most N timed calls per size\n"
            "  --pcm-from: the clips as host memory (staged and uploaded every call, as in production), already on\n"
            "    the device (as the PyTorch reference's benchmark and issue #6 time it), or both (default)\n",
            a0);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argv[0]);
        return argc < 2 ? 2 : 0;
    }
    const char *model = argv[1], *batches = "64,256,1024";
    ac_precision prec = AC_PREC_BF16;
    int beam = 3, iters = 0, from_host = 1, from_device = 1;
    double seconds = 4;  // per batch size and PCM source (gpu-check runs 2 x 4 of them)
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            usage(argv[0]);
            return 2;
        }
        if (!strcmp(a, "--precision")) {
            if (!strcmp(v, "fp32")) prec = AC_PREC_FP32;
            else if (!strcmp(v, "bf16")) prec = AC_PREC_BF16;
            else {
                usage(argv[0]);
                return 2;
            }
        } else if (!strcmp(a, "--beam")) beam = atoi(v);
        else if (!strcmp(a, "--batch")) batches = v;
        else if (!strcmp(a, "--seconds")) seconds = atof(v);
        else if (!strcmp(a, "--iters")) iters = atoi(v);
        else if (!strcmp(a, "--pcm-from")) {
            from_host = !strcmp(v, "host") || !strcmp(v, "both");
            from_device = !strcmp(v, "device") || !strcmp(v, "both");
            if (!from_host && !from_device) {
                usage(argv[0]);
                return 2;
            }
        } else {
            usage(argv[0]);
            return 2;
        }
        i++;
    }
    int ndev = 0;
    if (ac_cuda_device_count(&ndev) != AC_OK || ndev == 0) {
        fprintf(stderr, "bench_gpu_caption: no CUDA device: skipped\n");
        return 77;
    }
    ac_gpu_model *g = NULL;
    if (ac_gpu_model_load(model, 0, prec, &g) != AC_OK) {
        fprintf(stderr, "bench_gpu_caption: %s\n", ac_last_error());
        return 1;
    }
    const ac_model_config *c = ac_gpu_model_config(g);
    const int sr = c->frontend.sample_rate;
    const int64_t len = (int64_t)10 * sr;
    int max_batch = 0;
    for (const char *s = batches; *s;) {
        int b = atoi(s);
        if (b > max_batch) max_batch = b;
        s = strchr(s, ',');
        if (!s) break;
        s++;
    }
    if (max_batch < 1) {
        usage(argv[0]);
        return 2;
    }
    // synthetic clips: white noise (odd clips) and linear chirps (even), distinct per clip
    float **x = calloc((size_t)max_batch, sizeof(float *));
    int64_t *ns = calloc((size_t)max_batch, sizeof(int64_t));
    ac_caption *out = calloc((size_t)max_batch, sizeof(ac_caption));
    if (!x || !ns || !out) {
        fprintf(stderr, "bench_gpu_caption: out of host memory for %d clips\n", max_batch);
        return 1;
    }
    uint64_t rng = 42;
    for (int i = 0; i < max_batch; i++) {
        x[i] = malloc(sizeof(float) * (size_t)len);
        if (!x[i]) {
            fprintf(stderr, "bench_gpu_caption: out of host memory\n");
            return 1;
        }
        ns[i] = len;
        const double f0 = 100.0 + 37.0 * i, f1 = 8000.0 - 11.0 * i;
        for (int64_t t = 0; t < len; t++) {
            if (i & 1) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                x[i][t] = 0.3f * ((float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f);
            } else {
                const double tt = (double)t / sr, ph = 2 * M_PI * (f0 * tt + 0.5 * (f1 - f0) / 10.0 * tt * tt);
                x[i][t] = (float)(0.5 * sin(ph));
            }
        }
    }
    // the same clips packed back to back on the device, uploaded once (ac_gpu_caption_resident)
    float *d_pcm = NULL;
    if (from_device) {
        cudaError_t e = cudaMalloc((void **)&d_pcm, sizeof(float) * (size_t)len * max_batch);
        for (int i = 0; e == cudaSuccess && i < max_batch; i++)
            e = cudaMemcpy(d_pcm + (size_t)len * i, x[i], sizeof(float) * (size_t)len, cudaMemcpyHostToDevice);
        if (e != cudaSuccess) {
            fprintf(stderr, "bench_gpu_caption: the clips on the device: %s\n", cudaGetErrorString(e));
            return 1;
        }
    }
    char dev[256] = "";
    ac_cuda_device_describe(0, dev, sizeof dev);
    bench_json_safe(dev);
    ac_decode_params dp = {beam, -1, -1, -1};
    const char *ge = getenv("AC_GPU_GRAPH");
    const int graph = ge && ge[0] == '1';  // the decoder replays CUDA graphs (kernels/gpu_decoder.cu)
    const char *lt = getenv("AC_LINEAR_TILE");  // the decoder linears' BF16 tile, forced (kernels/decoder_linear.cu)
    const char *tile = lt && (!strcmp(lt, "64") || !strcmp(lt, "32")) ? lt : "auto";
    int rc = 0;
    for (const char *s = batches; s && *s;) {
        const int batch = atoi(s);
        s = strchr(s, ',');
        if (s) s++;
        if (batch < 1) continue;
        for (int resident = 0; resident < 2; resident++) {
            if ((resident && !from_device) || (!resident && !from_host)) continue;
            ac_gpu_caption_stats st;
#define CALL()                                                                                                    \
    (resident ? ac_gpu_caption_resident(g, batch, AC_PCM_F32, d_pcm, ns, &dp, out, &st)                            \
              : ac_gpu_caption_clips_ex(g, batch, (const float *const *)x, ns, &dp, out, &st))
            if (CALL() != AC_OK) {  // warm-up
                fprintf(stderr, "bench_gpu_caption: batch %d: %s\n", batch, ac_last_error());
                rc = 1;
                continue;
            }
            double enc = 0, decd = 0, deq = 0, steps = 0;
            int calls = 0;
            const double t0 = bench_now();
            double t = t0;
            while ((iters <= 0 || calls < iters) && (calls == 0 || t - t0 < seconds)) {
                if (CALL() != AC_OK) {
                    fprintf(stderr, "bench_gpu_caption: batch %d: %s\n", batch, ac_last_error());
                    rc = 1;
                    break;
                }
                enc += st.encoder_ms;
                decd += st.decoder_ms;
                deq += st.decoder_enqueue_ms;
                steps += st.steps;
                calls++;
                t = bench_now();
            }
#undef CALL
            if (calls == 0) continue;
            printf("{\"bench\":\"%s\",\"precision\":\"%s\",\"beam\":%d,\"batch\":%d,\"clips_per_s\":%.1f,"
                   "\"encoder_ms\":%.3f,\"decoder_ms\":%.3f,\"decoder_enqueue_ms\":%.3f,\"steps\":%.1f,\"graph\":%d,\"linear_tile\":\"%s\","
                   "\"device\":\"%s\"}\n",
                   resident ? "gpu_caption_resident" : "gpu_caption", prec == AC_PREC_BF16 ? "bf16" : "fp32", beam,
                   batch, (double)batch * calls / (t - t0), enc / calls, decd / calls, deq / calls, steps / calls, graph, tile, dev);
            fflush(stdout);
        }
    }
    for (int i = 0; i < max_batch; i++) free(x[i]);
    free(x);
    free(ns);
    free(out);
    if (d_pcm) cudaFree(d_pcm);
    ac_gpu_model_free(g);
    return rc;
}
