// Device beam search (kernels/beam_search.cu) against host/beam.c on scripted, adversarial logits: the logits of
// a row are a pure function of (clip, its prefix), so both searches see the same numbers whatever order they
// keep their rows in. Patterns: heavy ties (8 levels), all-equal rows, continuous values, EOS favoured on some
// prefixes (clips whose beams finish at different steps), EOS dominant (every beam finishing at once at
// min_pred_size), all hypotheses forced at max length, min length beyond max length; repetition bans on a third
// of the vocabulary. Each clip of a batch gets its own pattern, so clips with different live counts share steps.
// Expected: tokens, lengths, best slot identical; scores identical to TOL_SCORE_ABS (both compute the same
// float32 expression; only the double sum of exponentials is summed in another order).
// Unused logit rows are poisoned with NaN before each step. Exits 77 without a GPU, after the host-side checks
// (parameter resolution as ac_caption_clips does it, argument checks that fail before any CUDA call), which run
// everywhere and fail the test when wrong.
#include "../kernels/attention_decode.h"
#include "../kernels/beam_search.h"
#include "../kernels/decoder_linear.h"
#include "../kernels/device.h"
#include "../kernels/gpu_decoder.h"
#include "beam.h"
#include "beam_logits.h"
#include "testutil.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const gen *g;
    int stride;
    int *prefix, *tmp;  // (max_rows, stride)
} host_src;

static ac_status hs_step(void *ctx, int step, int n_rows, const int *row_clip, const int *tokens, float *logits) {
    host_src *s = ctx;
    for (int r = 0; r < n_rows; r++) {
        s->prefix[(size_t)r * s->stride + step] = tokens[r];
        gen_logits(s->g, row_clip[r], s->prefix + (size_t)r * s->stride, step + 1, logits + (size_t)r * s->g->V);
    }
    return AC_OK;
}

static void hs_reorder(void *ctx, int step, int n_new, const int *src) {
    host_src *s = ctx;
    for (int r = 0; r < n_new; r++)
        memcpy(s->tmp + (size_t)r * s->stride, s->prefix + (size_t)src[r] * s->stride, sizeof(int) * (step + 1));
    int *t = s->prefix;
    s->prefix = s->tmp;
    s->tmp = t;
}

static int checks;

// Runs the device search; returns 0 on a CUDA failure (already counted).
static int run_gpu(const ac_gpu_beam_params *p, const gen *g, const int *bos, ac_caption *out) {
    ac_gpu_beam *b = NULL;
    ac_status st = ac_gpu_beam_create(p, 0, &b);
    CHECK(st == AC_OK, "create: %s", ac_last_error());
    if (st) return 0;
    const int max_rows = p->n_clips * p->beam_size, stride = p->max_pred_size + 1, V = p->vocab_size;
    int *row_clip = malloc(sizeof(int) * max_rows), *prefix = malloc(sizeof(int) * (size_t)max_rows * stride);
    float *lg = malloc(sizeof(float) * (size_t)max_rows * V), *d_lg = NULL;
    int ok = cudaMalloc((void **)&d_lg, sizeof(float) * (size_t)max_rows * V) == cudaSuccess;
    CHECK(ok, "cudaMalloc logits");
    if (ok) CHECK_OK(st = ac_gpu_beam_init(b, bos));
    for (int i = 0; ok && !st && i < p->max_pred_size; i++) {
        int n_rows = -1;
        CHECK_OK(st = ac_gpu_beam_download_rows(b, &n_rows, row_clip, prefix));
        if (st) break;
        CHECK(n_rows >= 0 && n_rows <= max_rows, "step %d: %d rows", i, n_rows);
        for (size_t k = 0; k < (size_t)max_rows * V; k++) lg[k] = NAN;
        for (int r = 0; r < n_rows; r++) gen_logits(g, row_clip[r], prefix + (size_t)r * stride, i + 1, lg + (size_t)r * V);
        ok = cudaMemcpy(d_lg, lg, sizeof(float) * (size_t)max_rows * V, cudaMemcpyHostToDevice) == cudaSuccess;
        CHECK(ok, "copy logits");
        if (ok) CHECK_OK(st = ac_gpu_beam_step(b, i, d_lg));
    }
    if (ok && !st) CHECK_OK(st = ac_gpu_beam_results(b, out));
    cudaFree(d_lg);
    free(row_clip);
    free(prefix);
    free(lg);
    ac_gpu_beam_free(b);
    return ok && !st;
}

static double g_worst_score;

static int same_caption(const ac_caption *a, const ac_caption *b, const char *what, int clip, int strict_score) {
    int bad = a->n_beams != b->n_beams || a->best != b->best;
    for (int j = 0; !bad && j < a->n_beams; j++) {
        const ac_hyp *x = &a->beams[j], *y = &b->beams[j];
        if (x->n_tokens != y->n_tokens || memcmp(x->tokens, y->tokens, sizeof(int) * (size_t)x->n_tokens)) bad = 1;
        double d = (isinf(x->score) && x->score == y->score) ? 0 : fabs((double)x->score - y->score);
        if (!(d <= (strict_score ? 0.0 : TOL_SCORE_ABS))) bad = 1;
        if (d > g_worst_score) g_worst_score = d;
    }
    if (bad) {
        fprintf(stderr, "  %s clip %d: best %d/%d\n", what, clip, a->best, b->best);
        for (int j = 0; j < a->n_beams && j < b->n_beams; j++) {
            fprintf(stderr, "    slot %d: %d tokens %.8g vs %d tokens %.8g:", j, a->beams[j].n_tokens, a->beams[j].score,
                    b->beams[j].n_tokens, b->beams[j].score);
            for (int t = 0; t < a->beams[j].n_tokens && t < 30; t++) fprintf(stderr, " %d", a->beams[j].tokens[t]);
            fprintf(stderr, " |");
            for (int t = 0; t < b->beams[j].n_tokens && t < 30; t++) fprintf(stderr, " %d", b->beams[j].tokens[t]);
            fprintf(stderr, "\n");
        }
    }
    return !bad;
}

static void run_case(int n_clips, int K, int V, int minp, int maxp, int with_mask, uint32_t seed, int pattern) {
    gen g = {seed, V, (int)(seed % (uint32_t)V), maxp, pattern};
    uint8_t *mask = NULL;
    if (with_mask) {
        mask = calloc((size_t)V, 1);
        for (int v = 0; v < V; v++) mask[v] = v != g.eos && mix(seed ^ 0x55u, (uint32_t)v) % 3 == 0;
    }
    int *bos = malloc(sizeof(int) * n_clips);
    for (int c = 0; c < n_clips; c++) bos[c] = (int)(mix(seed, 1000u + (uint32_t)c) % (uint32_t)V);
    ac_beam_params hp = {K, minp, maxp, g.eos, V, mask};
    ac_caption *ref = calloc((size_t)n_clips, sizeof *ref), *got = calloc((size_t)n_clips, sizeof *got);
    ac_caption *one = calloc(1, sizeof *one);
    host_src hs = {&g, maxp + 1, malloc(sizeof(int) * (size_t)n_clips * K * (maxp + 1)),
                   malloc(sizeof(int) * (size_t)n_clips * K * (maxp + 1))};
    ac_logits_source src = {&hs, hs_step, hs_reorder};
    CHECK_OK(ac_beam_search(&hp, n_clips, bos, &src, ref));
    ac_gpu_beam_params gp = {n_clips, K, minp, maxp, g.eos, V, mask};
    char what[160];
    snprintf(what, sizeof what, "clips %d beam %d V %d min %d max %d mask %d seed %u pattern %d", n_clips, K, V, minp,
             maxp, with_mask, seed, pattern);
    if (run_gpu(&gp, &g, bos, got)) {
        for (int c = 0; c < n_clips; c++) {
            CHECK(same_caption(ref + c, got + c, what, c, 0), "%s: clip %d differs from host/beam.c", what, c);
            checks++;
        }
        // clip 0 alone: bit-identical to its result in the batch (the generator hashes the clip index, so the
        // same index and pattern give the same logits)
        if (n_clips > 1) {
            gen g1 = g;
            ac_gpu_beam_params p1 = gp;
            p1.n_clips = 1;
            if (run_gpu(&p1, &g1, bos, one)) {
                CHECK(same_caption(got, one, "alone vs batch", 0, 1), "%s: clip 0 alone differs from the batch", what);
                checks++;
            }
        }
    }
    free(hs.prefix);
    free(hs.tmp);
    free(ref);
    free(got);
    free(one);
    free(bos);
    free(mask);
}

// Plain-C logic of the device path, no GPU needed.
static void host_checks(void) {
    ac_model_config c;
    memset(&c, 0, sizeof c);
    c.vocab_size = 100;
    c.decoder.max_positions = 30;
    c.decoding.beam_size = 3;
    c.decoding.min_pred_size = 2;
    c.decoding.max_pred_size = 20;
    c.decoding.bos_id = 1;
    c.decoding.eos_id = 2;
    c.decoding.default_task = -1;
    const uint8_t mask[100] = {0};
    ac_beam_params bp;
    int bos = -1;
    CHECK_OK(ac_gpu_resolve_params(&c, NULL, mask, &bp, &bos));
    CHECK(bp.beam_size == 3 && bp.min_pred_size == 2 && bp.max_pred_size == 20 && bp.eos_id == 2 &&
              bp.vocab_size == 100 && bp.forbid_rep_mask == mask && bos == 1,
          "defaults: beam %d min %d max %d eos %d V %d bos %d", bp.beam_size, bp.min_pred_size, bp.max_pred_size,
          bp.eos_id, bp.vocab_size, bos);
    ac_decode_params dp = {5, 0, 7, -1};
    CHECK_OK(ac_gpu_resolve_params(&c, &dp, NULL, &bp, &bos));
    CHECK(bp.beam_size == 5 && bp.min_pred_size == 0 && bp.max_pred_size == 7 && !bp.forbid_rep_mask, "overrides");
    c.decoding.n_tasks = 2;
    c.decoding.task_token_ids[0] = 40;
    c.decoding.task_token_ids[1] = 41;
    c.decoding.default_task = 1;
    CHECK_OK(ac_gpu_resolve_params(&c, NULL, NULL, &bp, &bos));
    CHECK(bos == 41, "default task token %d, want 41", bos);
    dp = (ac_decode_params){-1, -1, -1, 0};
    CHECK_OK(ac_gpu_resolve_params(&c, &dp, NULL, &bp, &bos));
    CHECK(bos == 40, "task 0 token %d, want 40", bos);
    dp.task = 2;
    CHECK(ac_gpu_resolve_params(&c, &dp, NULL, &bp, &bos) == AC_ERR_INVALID_ARG, "task 2 of 2 accepted");
    dp = (ac_decode_params){AC_MAX_BEAM + 1, -1, -1, -1};
    CHECK(ac_gpu_resolve_params(&c, &dp, NULL, &bp, &bos) == AC_ERR_INVALID_ARG, "beam %d accepted", AC_MAX_BEAM + 1);
    dp = (ac_decode_params){3, -1, 30, -1};
    CHECK(ac_gpu_resolve_params(&c, &dp, NULL, &bp, &bos) == AC_ERR_INVALID_ARG, "max length 30 with 30 positions");
    // decoder memory estimate: d_model 256, 6 layers, ff 2048, 4371 tokens, 1024 clips x beam 3, 20 steps,
    // 32 frames a clip: the self-attention cache 6*20*3072*512 floats, the cross K/V, ~100 MB of activations
    c.decoder.d_model = 256;
    c.decoder.num_layers = 6;
    c.decoder.dim_feedforward = 2048;
    c.vocab_size = 4371;
    const size_t est = ac_gpu_decoder_bytes(&c, 1024, 3, 20, 1024 * 32);
    const size_t cache = (size_t)4 * 6 * 20 * 3072 * 512, xkv = (size_t)4 * 6 * 32768 * 512;
    CHECK(est > cache + xkv && est < cache + xkv + ((size_t)128 << 20), "decoder bytes %zu for cache %zu + K/V %zu", est,
          cache, xkv);
    CHECK(ac_gpu_decoder_bytes(&c, 2048, 3, 20, 2048 * 32) > 2 * est - ((size_t)1 << 20), "not linear in the batch");
    c.vocab_size = 100;
    // argument checks before any device call
    ac_gpu_beam *b = NULL;
    ac_gpu_beam_params gp = {4, 0, 0, 10, 2, 100, NULL};
    CHECK(ac_gpu_beam_create(&gp, 0, &b) == AC_ERR_INVALID_ARG && !b, "beam 0 accepted");
    gp = (ac_gpu_beam_params){4, 5, 0, 10, 2, 4, NULL};
    CHECK(ac_gpu_beam_create(&gp, 0, &b) == AC_ERR_INVALID_ARG && !b, "beam 5 over 4 tokens accepted");
    gp = (ac_gpu_beam_params){4, 3, 0, AC_MAX_PRED, 2, 100, NULL};
    CHECK(ac_gpu_beam_create(&gp, 0, &b) == AC_ERR_INVALID_ARG && !b, "max length %d accepted", AC_MAX_PRED);
    gp = (ac_gpu_beam_params){4, 3, 0, 10, 100, 100, NULL};
    CHECK(ac_gpu_beam_create(&gp, 0, &b) == AC_ERR_INVALID_ARG && !b, "eos out of the vocabulary accepted");
    float f = 0;
    CHECK(ac_gpu_linear(&f, 4, NULL, 0, &f, NULL, NULL, NULL, 4, 0, &f, 0) == AC_ERR_INVALID_ARG, "linear K 0 accepted");
    int i0 = 0;
    CHECK(ac_gpu_attention_self(&f, &f, &i0, 0, 4, &i0, &i0, 1, 1, 10, 3, &f, 0) == AC_ERR_INVALID_ARG,
          "D 10 over 3 heads accepted");
    CHECK(ac_gpu_attention_self(&f, &f, &i0, 4, 4, &i0, &i0, 1, 1, 8, 2, &f, 0) == AC_ERR_INVALID_ARG,
          "step 4 of 4 accepted");
    CHECK(ac_gpu_attention_cross(&f, &f, &i0, &i0, 0, &i0, &i0, 1, 8, 2, &f, 0) == AC_ERR_INVALID_ARG,
          "memory length 0 accepted");
    CHECK(ac_gpu_gather_rows(&i0, &i0, 4, 4, &i0, &i0, &i0, 1, 0) == AC_ERR_INVALID_ARG, "gather past the stride");
    checks += 21;
}

int main(void) {
    host_checks();
    if (g_failures) return test_finish("test_cuda_beam (host checks)", checks);
    int n = 0;
    if (ac_cuda_device_count(&n) != AC_OK || n == 0) {
        printf("test_cuda_beam: %d host checks passed; no CUDA device: skipped\n", checks);
        return AC_SKIP;
    }
    const int beams[] = {1, 2, 3, 4, 5, 8, 16};
    const int vocabs[] = {17, 64, 301, 4371};
    const int clips[] = {1, 3, 37};
    const int lens[][2] = {{0, 1}, {0, 2}, {1, 5}, {3, 20}, {25, 20}, {5, 30}};
    // AC_TEST_SMALL=1 (the CPU stand-in runtime, tests/emu-runtime): beams 1, 3, 16, the smallest and largest
    // vocabularies, every clip count and length, one pattern per case, 8 seeds below; a GPU runs everything
    const char *small_env = getenv("AC_TEST_SMALL");
    const int small = small_env && small_env[0] == '1';
    uint32_t seed = 1;
    for (size_t bi = 0; bi < sizeof beams / sizeof beams[0]; bi++)
        for (size_t vi = 0; vi < sizeof vocabs / sizeof vocabs[0]; vi++)
            for (size_t ci = 0; ci < sizeof clips / sizeof clips[0]; ci++)
                for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
                    if (vocabs[vi] < beams[bi]) continue;
                    if (small && (!(beams[bi] == 1 || beams[bi] == 3 || beams[bi] == 16) || vi == 1 || vi == 2)) continue;
                    if (small) {
                        run_case(clips[ci], beams[bi], vocabs[vi], lens[li][0], lens[li][1], (int)(seed & 1), seed,
                                 (int)(seed % PAT_N));
                        seed++;
                        continue;
                    }
                    if (beams[bi] == 16 && vocabs[vi] > 301 && clips[ci] > 3) continue;  // keep the run short
                    for (int pat = 0; pat < PAT_N; pat += (clips[ci] > 1 ? 2 : 1)) {
                        run_case(clips[ci], beams[bi], vocabs[vi], lens[li][0], lens[li][1], (int)(seed & 1), seed, pat);
                        seed++;
                    }
                }
    // many seeds on the configuration closest to the model's (beam 3, min 3, max 20, realistic vocabulary size)
    for (int s = 0; s < (small ? 8 : 200); s++) run_case(5, 3, 4371, 3, 20, 1, 100000u + (uint32_t)s, s % PAT_N);
    printf("  worst score difference: %.3g / %.3g = %.1f %% of the budget\n", g_worst_score, TOL_SCORE_ABS,
           100.0 * g_worst_score / TOL_SCORE_ABS);
    return test_finish("test_cuda_beam", checks);
}
