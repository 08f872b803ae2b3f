// Captioning on the device (kernels/gpu_caption.h, gpu_decoder.h) against the CPU oracle ac_caption_clips, on
// the tiny fixture model in both layouts (conette HF and DCASE-2024) and, when paths are given as arguments,
// further models (the full-size fixture):
//   decoder alone  the CPU encoder's memory packed on the device -> ac_gpu_decode: FP32 tokens identical to the
//                  CPU's for every beam slot, scores within TOL_SCORE_ABS, beams 1..5;
//   end to end     ac_gpu_caption_clips: the same, plus statuses and texts (clips too short fail alike);
//   batch          each clip alone and the batch reversed: bit-identical to its result in the batch;
//   resident PCM   the batch packed on the device (ac_gpu_caption_resident, beam 3): bit-identical;
//   CUDA graphs    the decoder replaying graphs, the default (capture, then replay): bit-identical to plain
//                  launches (AC_GPU_GRAPH=0); a batch of other memory lengths replays the same graphs (none
//                  captured) with the same results;
//                  a smaller batch captures its own and the full batch then replays its kept ones; with another
//                  thread synchronising the device throughout (which invalidates captures on a GPU), every call
//                  still succeeds with the plain launches' results, and graphs are captured again afterwards;
//   BF16           the share of best captions identical to FP32 is reported (not a pass/fail criterion).
// Exits 77 without a GPU. AC_TEST_BEAMS=3 (a list) runs those beam sizes only; AC_TEST_ONE_LAYOUT=1 the conette HF
// fixture only: the CPU stand-in's quick run in CI (tests/emu-runtime/CMakeLists.txt).
#include "../kernels/device.h"
#include "../kernels/gpu_caption.h"
#include "../kernels/gpu_decoder.h"
#include "model.h"
#include "testutil.h"

#include <cuda_runtime_api.h>
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static int checks;

typedef struct {
    int n;
    char **names;
    float **x;
    int64_t *ns;
} clipset;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void load_clips(const char *dir, int rate, clipset *cs) {
    memset(cs, 0, sizeof *cs);
    DIR *d = opendir(dir);
    CHECK(d != NULL, "cannot open %s", dir);
    if (!d) return;
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256)
        if (e->d_name[0] != '.') names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    cs->names = calloc((size_t)n, sizeof(char *));
    cs->x = calloc((size_t)n, sizeof(float *));
    cs->ns = calloc((size_t)n, sizeof(int64_t));
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        ac_audio a;
        if (ac_audio_load(path, &a, NULL) != AC_OK) {
            printf("  (skipping %s: %s)\n", names[i], ac_last_error());
            free(names[i]);
            continue;
        }
        if (ac_audio_to_model_rate(&a, rate, &cs->x[cs->n], &cs->ns[cs->n]) == AC_OK) cs->names[cs->n++] = names[i];
        else free(names[i]);
        ac_audio_free(&a);
    }
}

static void free_clips(clipset *cs) {
    for (int i = 0; i < cs->n; i++) {
        free(cs->names[i]);
        free(cs->x[i]);
    }
    free(cs->names);
    free(cs->x);
    free(cs->ns);
}

static double g_worst_score;

// exact: scores bit-identical too; text: compare texts as well
static int same(const ac_caption *a, const ac_caption *b, int exact, int text) {
    if (a->status != b->status) return 0;
    if (a->status != AC_OK) return 1;
    if (a->n_beams != b->n_beams || a->best != b->best) return 0;
    for (int j = 0; j < a->n_beams; j++) {
        const ac_hyp *x = &a->beams[j], *y = &b->beams[j];
        if (x->n_tokens != y->n_tokens || memcmp(x->tokens, y->tokens, sizeof(int) * (size_t)x->n_tokens)) return 0;
        const double d = fabs((double)x->score - y->score);
        if (!exact && d > g_worst_score) g_worst_score = d;
        if (exact ? memcmp(&x->score, &y->score, sizeof(float)) != 0 : !(d <= TOL_SCORE_ABS)) return 0;
        if (text && strcmp(x->text, y->text)) return 0;
    }
    return 1;
}

static void show(const char *what, const ac_caption *a, const ac_caption *b) {
    fprintf(stderr, "  %s: status %d/%d best %d/%d\n", what, a->status, b->status, a->best, b->best);
    for (int j = 0; j < a->n_beams && j < b->n_beams; j++)
        fprintf(stderr, "    slot %d: %.7g \"%s\"\n         %.7g \"%s\"\n", j, a->beams[j].score, a->beams[j].text,
                b->beams[j].score, b->beams[j].text);
}

// A thread that synchronises the device (and frees memory, another implicit synchronisation) until told to stop,
// as another worker on the same GPU does; it keeps its first error
typedef struct {
    atomic_int stop;
    int calls;
    cudaError_t err;
} racer;
static void *race(void *p) {
    racer *r = (racer *)p;
    while (!atomic_load(&r->stop)) {
        void *q = NULL;
        cudaError_t e = cudaDeviceSynchronize();
        if (e == cudaSuccess) e = cudaMalloc(&q, 256);
        if (e == cudaSuccess) e = cudaFree(q);
        if (e != cudaSuccess && r->err == cudaSuccess) r->err = e;
        r->calls++;
    }
    return NULL;
}

static int on_emulator(void) {
    char d[256] = "";
    ac_cuda_device_describe(0, d, sizeof d);
    return strstr(d, "emu-runtime") != NULL;
}

// The graph cache and capture fallback: first j clips of the decoder_only batch (j < k), against plain launches
static void graph_shapes(ac_gpu_model *g, int k, const float *dmem, const int64_t *off, const int *nf, const int *ml,
                         const int *bos, const ac_beam_params *bp, const ac_caption *full, const char *label) {
    if (k < 3) return;
    ac_caption *plain = calloc((size_t)k, sizeof *plain), *gr = calloc((size_t)k, sizeof *gr);
    ac_gpu_decode_stats st;
    // a smaller batch (a bulk run's last) captures its own graphs; the full batch then replays its kept ones
    setenv("AC_GPU_GRAPH", "0", 1);  // plain launches
    CHECK_OK(ac_gpu_decode(g, k - 1, dmem, off, nf, ml, bos, bp, plain, &st));
    setenv("AC_GPU_GRAPH", "1", 1);
    CHECK_OK(ac_gpu_decode(g, k - 1, dmem, off, nf, ml, bos, bp, gr, &st));
    checks++;
    CHECK(st.graphs && st.graphs_captured == bp->max_pred_size, "%s graph run, %d clips: %d graphs captured", label,
          k - 1, st.graphs_captured);
    for (int j = 0; j < k - 1; j++) {
        checks++;
        CHECK(same(&plain[j], &gr[j], 1, 0), "%s graph run, %d clips, clip %d: differs from the launches", label, k - 1, j);
    }
    CHECK_OK(ac_gpu_decode(g, k, dmem, off, nf, ml, bos, bp, gr, &st));
    checks++;
    CHECK(st.graphs && st.graphs_captured == 0, "%s graph run, %d clips after %d: %d graphs captured (the full "
          "batch's were kept)", label, k, k - 1, st.graphs_captured);
    for (int j = 0; j < k; j++) {
        checks++;
        CHECK(same(&full[j], &gr[j], 1, 0), "%s graph run, kept graphs, clip %d: differs from the launches", label, j);
    }
    // Captures of new shapes (1 and 2 clips) while another thread synchronises the device: on a GPU that
    // invalidates a capture on the same device; the call then launches its steps plainly (graph_fallback).
    // The results are the plain launches' whatever happened, and afterwards the decoder captures again (after a
    // failure it lets a call or a few go by plainly first). Whether the race hits a capture depends on timing; on
    // the CPU stand-in EMU_CAPTURE_INVALIDATE_AT makes each of these captures invalid midway, as the race would
    // (CUDA ignores it), so that the fallback runs every time there.
    ac_caption *ref[2] = {calloc(2, sizeof(ac_caption)), calloc(2, sizeof(ac_caption))};
    setenv("AC_GPU_GRAPH", "0", 1);  // plain launches
    for (int j = 1; j <= 2; j++) CHECK_OK(ac_gpu_decode(g, j, dmem, off, nf, ml, bos, bp, ref[j - 1], &st));
    setenv("AC_GPU_GRAPH", "1", 1);
    racer r = {.calls = 0, .err = cudaSuccess};
    atomic_init(&r.stop, 0);
    setenv("EMU_CAPTURE_INVALIDATE_AT", "5", 1);  // midway through step 0 (the tiny decoder: ~20 launches a step)
    pthread_t t;
    const int started = pthread_create(&t, NULL, race, &r) == 0;
    int fallbacks = 0;
    for (int j = 1; j <= 2; j++) {
        CHECK_OK(ac_gpu_decode(g, j, dmem, off, nf, ml, bos, bp, gr, &st));
        fallbacks += st.graph_fallback;
        checks++;
        CHECK(!(st.graph_fallback && (st.graphs || st.graphs_captured)),
              "%s racing, %d clips: a fallback that replayed graphs (%d) or captured %d", label, j, st.graphs,
              st.graphs_captured);
        for (int c = 0; c < j; c++) {
            checks++;
            CHECK(same(&ref[j - 1][c], &gr[c], 1, 0), "%s graph run racing a device synchronisation, %d clips, clip %d: "
                  "differs from the launches", label, j, c);
        }
    }
    atomic_store(&r.stop, 1);
    if (started) pthread_join(t, NULL);
    unsetenv("EMU_CAPTURE_INVALIDATE_AT");
    checks++;
    CHECK(r.err == cudaSuccess, "%s: the other thread's device synchronisation failed during a capture: %s", label,
          cudaGetErrorString(r.err));
    checks++;  // the first capture was invalidated there; the second call may have let it go by (backing off)
    CHECK(!on_emulator() || fallbacks >= 1, "%s: none of the captures the stand-in invalidated fell back", label);
    printf("  %s: decoder with CUDA graphs, another thread synchronising the device (%d calls): %d of 2 captures "
           "fell back to plain launches\n", label, r.calls, fallbacks);
    // alone again: within a few calls (after two failures in a row it lets 3 go by) the decoder replays graphs
    // again, each call with the plain launches' result
    int calls = 0;
    do {
        CHECK_OK(ac_gpu_decode(g, 1, dmem, off, nf, ml, bos, bp, gr, &st));
        calls++;
        checks++;
        CHECK(same(&ref[0][0], &gr[0], 1, 0), "%s call %d after the race: differs from the launches", label, calls);
    } while (!st.graphs && calls < 8);
    checks++;
    CHECK(st.graphs && !st.graph_fallback, "%s: no graphs in %d calls after the race", label, calls);
    unsetenv("AC_GPU_GRAPH");
    free(ref[0]);
    free(ref[1]);
    free(plain);
    free(gr);
}

// CPU encoder -> packed device memory -> the device decoder: isolates the decoder from the encoder
static void decoder_only(const ac_model *m, ac_gpu_model *g, const clipset *cs, const ac_decode_params *dp,
                         const ac_caption *ref, const char *label) {
    const ac_model_config *c = ac_model_config_of(m);
    const int D = c->decoder.d_model;
    float **mem = calloc((size_t)cs->n, sizeof(float *));
    int64_t *off = calloc((size_t)cs->n, sizeof(int64_t));
    int *nf = calloc((size_t)cs->n, sizeof(int)), *ml = calloc((size_t)cs->n, sizeof(int)), *idx = calloc((size_t)cs->n, sizeof(int));
    int *bos = calloc((size_t)cs->n, sizeof(int));
    int k = 0;
    int64_t total = 0;
    for (int i = 0; i < cs->n; i++) {
        if (ref[i].status != AC_OK) continue;
        CHECK_OK(ac_model_encode(m, cs->x[i], cs->ns[i], NULL, NULL, &mem[k], &nf[k], &ml[k]));
        if (!mem[k]) continue;
        off[k] = total;
        total += nf[k];
        idx[k++] = i;
    }
    float *host = malloc(sizeof(float) * (size_t)(total ? total : 1) * D), *dmem = NULL;
    for (int j = 0; j < k; j++) memcpy(host + (size_t)off[j] * D, mem[j], sizeof(float) * (size_t)nf[j] * D);
    CHECK(cudaMalloc((void **)&dmem, sizeof(float) * (size_t)(total ? total : 1) * D) == cudaSuccess, "cudaMalloc");
    CHECK(cudaMemcpy(dmem, host, sizeof(float) * (size_t)total * D, cudaMemcpyHostToDevice) == cudaSuccess, "copy");
    // a pageable copy may return before its DMA lands; the model's non-blocking stream would not wait for it
    CHECK(cudaDeviceSynchronize() == cudaSuccess, "synchronise");
    int64_t nfb = 0;
    ac_beam_params bp;
    int b0 = 0;
    CHECK_OK(ac_gpu_resolve_params(c, dp, ac_gpu_host_forbid_mask(g, &nfb), &bp, &b0));
    for (int j = 0; j < k; j++) bos[j] = b0;
    ac_caption *got = calloc((size_t)(k ? k : 1), sizeof *got);
    ac_gpu_decode_stats st;
    setenv("AC_GPU_GRAPH", "0", 1);  // the reference: plain launches (graphs are the default)
    CHECK_OK(ac_gpu_decode(g, k, dmem, off, nf, ml, bos, &bp, got, &st));
    for (int j = 0; j < k; j++) {
        const ac_caption *r = &ref[idx[j]];  // without text: tokens and scores
        got[j].status = AC_OK;
        int ok = same(r, &got[j], 0, 0);
        checks++;
        CHECK(ok, "%s decoder only, %s: tokens differ from the CPU", label, cs->names[idx[j]]);
        if (!ok) {
            for (int b = 0; b < got[j].n_beams; b++)
                ac_detokenize(c, got[j].beams[b].tokens, got[j].beams[b].n_tokens, got[j].beams[b].text,
                              sizeof got[j].beams[b].text);
            show(cs->names[idx[j]], r, &got[j]);
        }
    }
    printf("  %s: decoder only, %d clips, %d steps, %.2f ms\n", label, k, st.steps, st.ms);
    // CUDA graphs (AC_GPU_GRAPH=1, the default): captured on the first call, replayed on the second; bit-identical
    // results
    ac_caption *gr = calloc((size_t)(k ? k : 1), sizeof *gr);
    setenv("AC_GPU_GRAPH", "1", 1);
    for (int rep = 0; rep < 2; rep++) {
        CHECK_OK(ac_gpu_decode(g, k, dmem, off, nf, ml, bos, &bp, gr, &st));
        for (int j = 0; j < k; j++) {
            checks++;
            CHECK(same(&got[j], &gr[j], 1, 0), "%s graph run %d, %s: differs from the launches", label, rep,
                  cs->names[idx[j]]);
        }
        checks++;
        CHECK(st.graphs_captured == (rep ? 0 : bp.max_pred_size), "%s graph run %d: %d graphs captured", label, rep,
              st.graphs_captured);
        printf("  %s: decoder only with CUDA graphs (%s), %.2f ms\n", label, rep ? "replayed" : "captured", st.ms);
    }
    // A batch of the same clips with other lengths (as the next batch of a bulk run has): each clip shorter than the
    // longest attends one frame less and the last clip's padding shrinks, so the total frames change while the
    // longest memory stays. It replays the captured graphs, and equals plain launches on the same input.
    int *ml2 = malloc(sizeof(int) * (size_t)(k ? k : 1)), *nf2 = malloc(sizeof(int) * (size_t)(k ? k : 1)), mx = 0;
    for (int j = 0; j < k; j++) mx = ml[j] > mx ? ml[j] : mx;
    for (int j = 0; j < k; j++) {
        ml2[j] = ml[j] < mx && ml[j] > 1 ? ml[j] - 1 : ml[j];
        nf2[j] = nf[j];
    }
    if (k > 0 && nf[k - 1] > ml2[k - 1]) nf2[k - 1] = nf[k - 1] - 1;
    int shorter = 0;
    for (int j = 0; j < k; j++) shorter += ml2[j] != ml[j];
    checks++;
    CHECK(k < 2 || shorter > 0, "%s: the clips all have one length, so the other-lengths batch is the same", label);
    ac_caption *plain = calloc((size_t)(k ? k : 1), sizeof *plain);
    setenv("AC_GPU_GRAPH", "0", 1);  // plain launches
    CHECK_OK(ac_gpu_decode(g, k, dmem, off, nf2, ml2, bos, &bp, plain, &st));
    setenv("AC_GPU_GRAPH", "1", 1);
    CHECK_OK(ac_gpu_decode(g, k, dmem, off, nf2, ml2, bos, &bp, gr, &st));
    for (int j = 0; j < k; j++) {
        checks++;
        CHECK(same(&plain[j], &gr[j], 1, 0), "%s graph run, other lengths, %s: differs from the launches", label,
              cs->names[idx[j]]);
    }
    checks++;
    CHECK(st.graphs_captured == 0, "%s graph run, other lengths: %d graphs captured (the lengths are not in the "
          "graphs' key)", label, st.graphs_captured);
    printf("  %s: decoder only with CUDA graphs, %d of %d clips shorter (replayed), %.2f ms\n", label, shorter, k,
           st.ms);
    unsetenv("AC_GPU_GRAPH");
    graph_shapes(g, k, dmem, off, nf, ml, bos, &bp, got, label);
    free(plain);
    free(ml2);
    free(nf2);
    free(gr);
    cudaFree(dmem);
    for (int j = 0; j < k; j++) free(mem[j]);
    free(mem);
    free(off);
    free(nf);
    free(ml);
    free(idx);
    free(bos);
    free(host);
    free(got);
}

static void run_model(const char *path, const char *audio_dir) {
    printf("%s:\n", path);
    ac_model *m = NULL;
    ac_gpu_model *g = NULL, *g16 = NULL;
    CHECK_OK(ac_model_load(path, &m));
    CHECK_OK(ac_gpu_model_load(path, 0, AC_PREC_FP32, &g));
    if (!m || !g) {
        ac_model_free(m);
        ac_gpu_model_free(g);
        return;
    }
    const ac_model_config *c = ac_model_config_of(m);
    clipset cs;
    load_clips(audio_dir, c->frontend.sample_rate, &cs);
    const int n = cs.n;
    ac_caption *ref = calloc((size_t)n, sizeof *ref), *got = calloc((size_t)n, sizeof *got);
    ac_caption *one = calloc(1, sizeof *one), *rev = calloc((size_t)n, sizeof *rev);
    const float **xr = malloc(sizeof(float *) * n);
    int64_t *nr = malloc(sizeof(int64_t) * n);
    for (int i = 0; i < n; i++) {
        xr[i] = cs.x[n - 1 - i];
        nr[i] = cs.ns[n - 1 - i];
    }
    const char *beams = getenv("AC_TEST_BEAMS");
    for (int beam = 1; beam <= 5; beam++) {
        char b[4];
        snprintf(b, sizeof b, "%d", beam);
        if (beams && !strstr(beams, b)) continue;
        ac_decode_params dp = {beam, -1, -1, -1};
        char label[64];
        snprintf(label, sizeof label, "fp32 beam %d", beam);
        CHECK_OK(ac_caption_clips(m, n, (const float *const *)cs.x, cs.ns, &dp, ref));
        decoder_only(m, g, &cs, &dp, ref, label);
        ac_gpu_caption_stats st;
        CHECK_OK(ac_gpu_caption_clips_ex(g, n, (const float *const *)cs.x, cs.ns, &dp, got, &st));
        int n_same = 0;
        for (int i = 0; i < n; i++) {
            const int ok = same(&ref[i], &got[i], 0, 1);
            n_same += ok;
            checks++;
            CHECK(ok, "%s end to end, %s: differs from the CPU", label, cs.names[i]);
            if (!ok) show(cs.names[i], &ref[i], &got[i]);
        }
        printf("  %s: end to end %d/%d clips as the CPU; encoder %.2f ms, decoder %.2f ms, %d steps\n", label, n_same, n,
               st.encoder_ms, st.decoder_ms, st.steps);
        // batch invariance: each clip alone, and the batch reversed
        for (int i = 0; i < n; i++) {
            CHECK_OK(ac_gpu_caption_clips(g, 1, (const float *const *)&cs.x[i], &cs.ns[i], &dp, one));
            checks++;
            CHECK(same(one, &got[i], 1, 1), "%s: %s alone differs from the batch", label, cs.names[i]);
        }
        CHECK_OK(ac_gpu_caption_clips(g, n, xr, nr, &dp, rev));
        for (int i = 0; i < n; i++) {
            checks++;
            CHECK(same(&rev[n - 1 - i], &got[i], 1, 1), "%s: %s in the reversed batch differs", label, cs.names[i]);
        }
        if (beam == 3) {  // the clips packed on the device (ac_gpu_caption_resident): the host path's results
            int64_t tot = 0;
            for (int i = 0; i < n; i++) tot += cs.ns[i];
            float *d = NULL;
            CHECK(cudaMalloc((void **)&d, sizeof(float) * (size_t)(tot ? tot : 1)) == cudaSuccess, "device PCM");
            for (int64_t i = 0, o = 0; d && i < n; o += cs.ns[i], i++)
                CHECK(cudaMemcpy(d + o, cs.x[i], sizeof(float) * (size_t)cs.ns[i], cudaMemcpyHostToDevice) ==
                      cudaSuccess, "upload");
            CHECK_OK(ac_gpu_caption_resident(g, n, AC_PCM_F32, d, cs.ns, &dp, rev, NULL));
            for (int i = 0; i < n; i++) {
                checks++;
                CHECK(same(&rev[i], &got[i], 1, 1), "%s: %s from PCM on the device differs", label, cs.names[i]);
            }
            cudaFree(d);
        }
    }
    // BF16: agreement with FP32 reported
    if (ac_gpu_model_load(path, 0, AC_PREC_BF16, &g16) == AC_OK) {
        ac_decode_params dp = {-1, -1, -1, -1};
        ac_caption *b16 = calloc((size_t)n, sizeof *b16);
        CHECK_OK(ac_gpu_caption_clips(g, n, (const float *const *)cs.x, cs.ns, &dp, got));
        CHECK_OK(ac_gpu_caption_clips(g16, n, (const float *const *)cs.x, cs.ns, &dp, b16));
        int n_ok = 0, n_same = 0;
        for (int i = 0; i < n; i++) {
            if (got[i].status != AC_OK) continue;
            n_ok++;
            checks++;
            CHECK(b16[i].status == AC_OK && isfinite(b16[i].beams[b16[i].best].score), "bf16 %s: status %d",
                  cs.names[i], b16[i].status);
            n_same += !strcmp(got[i].beams[got[i].best].text, b16[i].beams[b16[i].best].text);
        }
        printf("  bf16: %d/%d best captions identical to fp32 (%.1f %%)\n", n_same, n_ok,
               n_ok ? 100.0 * n_same / n_ok : 0.0);
        free(b16);
        ac_gpu_model_free(g16);
    } else {
        checks++;
        CHECK(0, "bf16 load: %s", ac_last_error());
    }
    printf("  worst score difference vs the CPU: %.3g / %.3g = %.1f %% of the budget\n", g_worst_score, TOL_SCORE_ABS,
           100 * g_worst_score / TOL_SCORE_ABS);
    free(ref);
    free(got);
    free(one);
    free(rev);
    free(xr);
    free(nr);
    free_clips(&cs);
    ac_gpu_model_free(g);
    ac_model_free(m);
}

int main(int argc, char **argv) {
    int n = 0;
    if (ac_cuda_device_count(&n) != AC_OK || n == 0) {
        printf("test_cuda_caption: no CUDA device: skipped\n");
        return AC_SKIP;
    }
    run_model(AC_TEST_BIN "/fixture-tiny.safetensors", AC_TEST_DATA "/audio");
    const char *one = getenv("AC_TEST_ONE_LAYOUT");
    if (!(one && one[0] == '1')) run_model(AC_TEST_BIN "/fixture-tiny-dcase.safetensors", AC_TEST_DATA "/audio");
    for (int i = 1; i < argc; i++) run_model(argv[i], AC_TEST_DATA "/audio");
    return test_finish("test_cuda_caption", checks);
}
