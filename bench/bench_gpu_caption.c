// Whole captioning on the device from PCM already decoded (float clips at the model rate: synthetic noise and
// chirps of 10 s), per batch size: clips/s end to end and the encoder's and decoder's times (CUDA events on the
// model's stream, kernels/gpu_caption.h), with the clips in host memory ("gpu_caption": gathered and uploaded
// every call, as in production) and already on the device ("gpu_caption_resident": uploaded once, as the PyTorch
// reference's benchmark holds them and as issue #6 defines the figure). One JSON line per configuration:
//   {"bench":"gpu_caption","precision":"bf16","beam":3,"batch":256,"clips_per_s":..,"encoder_ms":..,
//    "decoder_ms":..,"decoder_enqueue_ms":..,"steps":..,"device":".."}
// encoder_ms / decoder_ms / steps are per call (one batch), averaged over the timed calls (encoder_ms of host
// clips includes their staging on the host); decoder_enqueue_ms is the host's time issuing the decoder's launches
// (near decoder_ms: launch-bound, the case for CUDA graphs); "graph" is 0 when AC_GPU_GRAPH=0 asked the decoder
// for plain launches (1, graphs, is the default), "graph_calls" how many of the timed calls ("calls", all workers')
// replayed graphs, "graph_fallbacks" how many found their capture failed (another worker synchronising the device)
// and launched plainly;
// "linear_tile" is the decoder linears' BF16 tile when AC_LINEAR_TILE forced one ("auto": the launcher's choice);
// "linear_ln" is "two launches" under AC_LINEAR_LN=0 (out_proj / linear2 and their LayerNorms as a plain linear and
// add+LN each), else "default" (out_proj fused, linear2 split-K).
// --workers N: N threads on device 0, each with its own model copy and stream, captioning their own batches of
// the same clips at once, as `audiocap caption --device cuda:0` runs (two workers per GPU by default: one's
// encoder fills the SMs the other's latency-bound decoder leaves idle); clips/s is their sum over the wall time,
// the per-stage times each call's own ("workers" field).
//   bench_gpu_caption MODEL [--precision fp32|bf16] [--beam 3] [--batch 64,256,1024] [--seconds 4] [--iters N]
//                           [--pcm-from host|device|both] [--workers 1]
// Exits 77 without a GPU. Targets (issue #6): >= 6,000 clips/s on an H100, decoding <= 25 % of encoder time.
#include "bench_util.h"
#include "../kernels/device.h"
#include "../kernels/gpu_caption.h"

#include <cuda_runtime_api.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_WORKERS 8

// One worker's run at one batch size: a warm-up call, the barrier every worker passes once warm, then its own
// timed calls.
typedef struct {
    ac_gpu_model *g;
    int batch, resident, iters;
    double seconds;
    const void *d_pcm;
    const float *const *x;
    const int64_t *ns;
    const ac_decode_params *dp;
    ac_caption *out;
    pthread_barrier_t *warm;
    double enc, dec, deq, steps, t_start, t_end;  // sums over the timed calls; the clock around them
    int calls, failed, graph_calls, fallbacks;    // timed calls that replayed CUDA graphs; captures that fell back
} worker;

static int call(worker *w, ac_gpu_caption_stats *st) {
    const ac_status s = w->resident
                            ? ac_gpu_caption_resident(w->g, w->batch, AC_PCM_F32, w->d_pcm, w->ns, w->dp, w->out, st)
                            : ac_gpu_caption_clips_ex(w->g, w->batch, w->x, w->ns, w->dp, w->out, st);
    if (s != AC_OK) {
        fprintf(stderr, "bench_gpu_caption: batch %d: %s\n", w->batch, ac_last_error());
        w->failed = 1;
    }
    return s == AC_OK;
}

static void *worker_run(void *p) {
    worker *w = (worker *)p;
    ac_gpu_caption_stats st;
    const int warm = call(w, &st);
    pthread_barrier_wait(w->warm);  // every worker, even a failed one (the others wait for it)
    w->t_start = w->t_end = bench_now();
    while (warm && (w->iters <= 0 || w->calls < w->iters) && (w->calls == 0 || w->t_end - w->t_start < w->seconds)) {
        if (!call(w, &st)) break;
        w->enc += st.encoder_ms;
        w->dec += st.decoder_ms;
        w->deq += st.decoder_enqueue_ms;
        w->steps += st.steps;
        w->graph_calls += st.decoder_graphs;
        w->fallbacks += st.decoder_graph_fallback;
        w->calls++;
        w->t_end = bench_now();
    }
    return NULL;
}

static void usage(const char *a0) {
    fprintf(stderr,
            "usage: %s MODEL [--precision fp32|bf16] [--beam 3] [--batch 64,256,1024] [--seconds 4] [--iters N]\n"
            "          [--pcm-from host|device|both] [--workers 1]\n"
            "  --seconds: time per batch size (after one warm-up call); --iters: at most N timed calls per size\n"
            "  --pcm-from: the clips as host memory (staged and uploaded every call, as in production), already on\n"
            "    the device (as the PyTorch reference's benchmark and issue #6 time it), or both (default)\n"
            "  --workers: threads captioning at once on the device, each with its own model copy and stream (as\n"
            "    the CLI's --workers per GPU); clips/s is their sum\n",
            a0);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argv[0]);
        return argc < 2 ? 2 : 0;
    }
    const char *model = argv[1], *batches = "64,256,1024";
    ac_precision prec = AC_PREC_BF16;
    int beam = 3, iters = 0, from_host = 1, from_device = 1, workers = 1;
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
        else if (!strcmp(a, "--workers")) {
            workers = atoi(v);
            if (workers < 1 || workers > MAX_WORKERS) {
                usage(argv[0]);
                return 2;
            }
        }
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
    ac_gpu_model *gm[MAX_WORKERS] = {NULL};
    for (int w = 0; w < workers; w++)
        if (ac_gpu_model_load(model, 0, prec, &gm[w]) != AC_OK) {
            fprintf(stderr, "bench_gpu_caption: worker %d: %s\n", w, ac_last_error());
            return 1;
        }
    const ac_model_config *c = ac_gpu_model_config(gm[0]);
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
    ac_caption *out = calloc((size_t)max_batch * workers, sizeof(ac_caption));  // workers' rows one after another
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
    const int graph = !(ge && ge[0] == '0');  // the decoder replays CUDA graphs (kernels/gpu_decoder.cu)
    const char *lt = getenv("AC_LINEAR_TILE");  // the decoder linears' BF16 tile, forced (kernels/decoder_linear.cu)
    const char *tile = lt && (!strcmp(lt, "64") || !strcmp(lt, "32")) ? lt : "auto";
    const char *ll = getenv("AC_LINEAR_LN");  // 0: out_proj / linear2 and their LayerNorms as two plain launches
    const char *linear_ln = ll && ll[0] == '0' ? "two launches" : "default";
    int rc = 0;
    for (const char *s = batches; s && *s;) {
        const int batch = atoi(s);
        s = strchr(s, ',');
        if (s) s++;
        if (batch < 1) continue;
        for (int resident = 0; resident < 2; resident++) {
            if ((resident && !from_device) || (!resident && !from_host)) continue;
            worker wk[MAX_WORKERS];
            pthread_t th[MAX_WORKERS];
            pthread_barrier_t warm;
            if (pthread_barrier_init(&warm, NULL, (unsigned)workers)) {
                fprintf(stderr, "bench_gpu_caption: pthread_barrier_init failed\n");
                return 1;
            }
            int started = 0;
            for (int w = 0; w < workers; w++) {
                wk[w] = (worker){.g = gm[w], .batch = batch, .resident = resident, .iters = iters, .seconds = seconds,
                                 .d_pcm = d_pcm, .x = (const float *const *)x, .ns = ns, .dp = &dp,
                                 .out = out + (size_t)w * max_batch, .warm = &warm};
                if (pthread_create(&th[w], NULL, worker_run, &wk[w])) break;
                started++;
            }
            if (started < workers) {  // the started ones wait at the barrier for ever: nothing to recover
                fprintf(stderr, "bench_gpu_caption: could not start %d worker threads\n", workers);
                return 1;
            }
            double enc = 0, decd = 0, deq = 0, steps = 0, t0 = 0, t1 = 0;
            long clips = 0;
            int calls = 0, graph_calls = 0, fallbacks = 0;
            for (int w = 0; w < workers; w++) {
                pthread_join(th[w], NULL);
                if (wk[w].failed) rc = 1;
                enc += wk[w].enc;
                decd += wk[w].dec;
                deq += wk[w].deq;
                steps += wk[w].steps;
                calls += wk[w].calls;
                graph_calls += wk[w].graph_calls;
                fallbacks += wk[w].fallbacks;
                clips += (long)batch * wk[w].calls;
                if (w == 0 || wk[w].t_start < t0) t0 = wk[w].t_start;
                if (w == 0 || wk[w].t_end > t1) t1 = wk[w].t_end;
            }
            pthread_barrier_destroy(&warm);
            if (calls == 0 || t1 <= t0) continue;
            printf("{\"bench\":\"%s\",\"precision\":\"%s\",\"beam\":%d,\"batch\":%d,\"workers\":%d,"
                   "\"clips_per_s\":%.1f,\"encoder_ms\":%.3f,\"decoder_ms\":%.3f,\"decoder_enqueue_ms\":%.3f,"
                   "\"steps\":%.1f,\"graph\":%d,\"calls\":%d,\"graph_calls\":%d,\"graph_fallbacks\":%d,\"linear_tile\":\"%s\","
                   "\"linear_ln\":\"%s\",\"device\":\"%s\"}\n",
                   resident ? "gpu_caption_resident" : "gpu_caption", prec == AC_PREC_BF16 ? "bf16" : "fp32", beam,
                   batch, workers, (double)clips / (t1 - t0), enc / calls, decd / calls, deq / calls, steps / calls,
                   graph, calls, graph_calls, fallbacks, tile, linear_ln, dev);
            fflush(stdout);
        }
    }
    for (int i = 0; i < max_batch; i++) free(x[i]);
    free(x);
    free(ns);
    free(out);
    if (d_pcm) cudaFree(d_pcm);
    for (int w = 0; w < workers; w++) ac_gpu_model_free(gm[w]);
    return rc;
}
