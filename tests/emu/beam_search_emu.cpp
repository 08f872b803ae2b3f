// CPU run of the device beam search's own kernels (kernels/beam_search_kernel.cuh) under tests/emu/emu_rt.h,
// driven step by step as ac_gpu_beam_init/ac_gpu_beam_step launch them (kernels/beam_search.cu: init, then per
// step select -> compact -> gather of the prefixes), against host/beam.c on scripted adversarial logits (those of
// tests/test_cuda_beam.c: a row's logits are a pure function of (clip, prefix), so both searches see the same
// numbers whatever order they keep their rows in): heavy ties, all-equal rows, continuous values, EOS on some
// prefixes, EOS dominant (every beam finishing at once at min_pred_size), EOS never chosen (every hypothesis
// forced at max length), min length beyond max length, repetition bans, V == beam size.
// Checked: at every step the rows (count, clip of each row, prefix, input token) equal host/beam.c's; at the end
// tokens, lengths and best slot identical and scores within TOL_SCORE_ABS (only the double sum of exponentials
// is summed in another order). All "device" arrays start as 0xff garbage, unused logit rows as NaN.
// Not a GPU test: it checks the code against CUDA's documented semantics, not what nvcc makes of it.
#include "emu_rt.h"

extern "C" {
#include "../../host/beam.h"
#include "../../host/status.h"
}
#include "../tolerances.h"

#include <cfloat>
#include <ctime>

#include "../../kernels/beam_search_kernel.cuh"

#define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))

#include "emu_check.h"

#include "../beam_logits.h"

// host/beam.c's logits source; records the row state of every step for the comparison
struct step_rows {
    int n_rows;
    std::vector<int> row_clip, tokens, prefix;  // prefix: (n_rows, step + 1)
};
struct host_src {
    const gen *g;
    int stride;
    std::vector<int> prefix, tmp;
    std::vector<step_rows> steps;
};

static ac_status hs_step(void *ctx, int step, int n_rows, const int *row_clip, const int *tokens, float *logits) {
    host_src *s = (host_src *)ctx;
    step_rows sr;
    sr.n_rows = n_rows;
    for (int r = 0; r < n_rows; r++) {
        s->prefix[(size_t)r * s->stride + step] = tokens[r];
        gen_logits(s->g, row_clip[r], &s->prefix[(size_t)r * s->stride], step + 1, logits + (size_t)r * s->g->V);
        sr.row_clip.push_back(row_clip[r]);
        sr.tokens.push_back(tokens[r]);
        for (int t = 0; t <= step; t++) sr.prefix.push_back(s->prefix[(size_t)r * s->stride + t]);
    }
    s->steps.push_back(sr);
    return AC_OK;
}

static void hs_reorder(void *ctx, int step, int n_new, const int *src) {
    host_src *s = (host_src *)ctx;
    for (int r = 0; r < n_new; r++)
        memcpy(&s->tmp[(size_t)r * s->stride], &s->prefix[(size_t)src[r] * s->stride], sizeof(int) * (step + 1));
    std::swap(s->prefix, s->tmp);
}

// ---- the device search, as kernels/beam_search.cu allocates and launches it ------------------------------------
struct emu_beam {
    int n, K, V, minp, maxp, eos, max_rows, stride, cur = 0;
    emu_buf<uint8_t> forbid;
    bool has_forbid;
    emu_buf<int> bos, n_live, row_off, labels, keep_src, keep_tok, n_rows, row_clip, tokens, src_row, prefix[2],
        out_tok, out_len, out_best;
    emu_buf<float> keep_sum, sums, out_score;

    emu_beam(int n_clips, int K_, int V_, int minp_, int maxp_, int eos_, const uint8_t *mask)
        : n(n_clips), K(K_), V(V_), minp(minp_), maxp(maxp_), eos(eos_), max_rows(n_clips * K_), stride(maxp_ + 1) {
        const size_t R = (size_t)max_rows, NK = (size_t)n * K;
        has_forbid = mask != nullptr;
        if (mask) {
            forbid.resize((size_t)V);
            memcpy(forbid.p(), mask, (size_t)V);
        }
        bos.resize(n), n_live.resize(n), row_off.resize(n), labels.resize(NK), keep_src.resize(NK);
        keep_tok.resize(NK), keep_sum.resize(NK), n_rows.resize(1), row_clip.resize(R), tokens.resize(R);
        src_row.resize(R), sums.resize(R), prefix[0].resize(R * stride), prefix[1].resize(R * stride);
        out_tok.resize(NK * maxp), out_len.resize(NK), out_best.resize(n), out_score.resize(NK);
    }
    void gather(const int *src, int *dst, int n_cols, const int *srow, const int *last) {
        emu_launch({(unsigned)max_rows, 1, 1}, {64, 1, 1}, 0,
                   [&] { gather_rows_kernel(src, dst, stride, n_cols, srow, last, n_rows.p()); });
    }
    void init(const int *bos_ids) {
        memcpy(bos.p(), bos_ids, sizeof(int) * n);
        cur = 0;
        emu_launch({(unsigned)CEIL_DIV(n, 128), 1, 1}, {128, 1, 1}, 0, [&] {
            beam_init_kernel(n, K, stride, bos.p(), n_live.p(), row_off.p(), labels.p(), row_clip.p(), tokens.p(),
                             sums.p(), prefix[0].p(), out_len.p(), out_best.p(), out_score.p(), n_rows.p());
        });
    }
    void step(int i, float *logits) {
        select_args a;
        a.K = K, a.V = V, a.maxp = maxp, a.minp = minp, a.eos = eos, a.stride = stride;
        a.forbid = has_forbid ? forbid.p() : nullptr;
        a.logits = logits;
        a.row_off = row_off.p(), a.prefix = prefix[cur].p(), a.sums = sums.p(), a.n_live = n_live.p();
        a.labels = labels.p(), a.keep_src = keep_src.p(), a.keep_tok = keep_tok.p(), a.keep_sum = keep_sum.p();
        a.out_tok = out_tok.p(), a.out_len = out_len.p(), a.out_best = out_best.p(), a.out_score = out_score.p();
        emu_launch({(unsigned)n, 1, 1}, {BEAM_THREADS, 1, 1}, 0, [&] { beam_select_kernel(a, i); });
        emu_launch({1, 1, 1}, {COMPACT_THREADS, 1, 1}, 0, [&] {
            beam_compact_kernel(n, K, n_live.p(), row_off.p(), keep_src.p(), keep_tok.p(), keep_sum.p(), src_row.p(),
                                tokens.p(), sums.p(), row_clip.p(), n_rows.p());
        });
        if (i + 1 < maxp) {
            gather(prefix[cur].p(), prefix[1 - cur].p(), i + 1, src_row.p(), tokens.p());
            cur = 1 - cur;
        }
    }
    void results(ac_caption *out) {
        for (int c = 0; c < n; c++) {
            out[c].n_beams = K;
            out[c].best = out_best[c];
            for (int j = 0; j < K; j++) {
                ac_hyp *h = &out[c].beams[j];
                const size_t s = (size_t)c * K + j;
                h->n_tokens = out_len[s];
                h->score = out_score[s];
                if (h->n_tokens < 0 || h->n_tokens > maxp) {
                    h->n_tokens = -1;
                    continue;
                }
                memcpy(h->tokens, &out_tok[s * maxp], sizeof(int) * (size_t)out_len[s]);
            }
        }
    }
};

static double g_worst_score;

static bool same_caption(const ac_caption *a, const ac_caption *b, const char *what, int clip) {
    bool bad = a->n_beams != b->n_beams || a->best != b->best;
    for (int j = 0; !bad && j < a->n_beams; j++) {
        const ac_hyp *x = &a->beams[j], *y = &b->beams[j];
        if (x->n_tokens != y->n_tokens || memcmp(x->tokens, y->tokens, sizeof(int) * (size_t)x->n_tokens)) bad = true;
        const double d = (std::isinf(x->score) && x->score == y->score) ? 0 : fabs((double)x->score - y->score);
        if (!(d <= TOL_SCORE_ABS)) bad = true;
        if (d > g_worst_score) g_worst_score = d;
    }
    if (bad) {
        fprintf(stderr, "  %s clip %d: best %d (host) / %d (device)\n", what, clip, a->best, b->best);
        for (int j = 0; j < a->n_beams && j < b->n_beams; j++) {
            fprintf(stderr, "    slot %d: %d tokens %.8g vs %d tokens %.8g:", j, a->beams[j].n_tokens,
                    a->beams[j].score, b->beams[j].n_tokens, b->beams[j].score);
            for (int t = 0; t < a->beams[j].n_tokens && t < 30; t++) fprintf(stderr, " %d", a->beams[j].tokens[t]);
            fprintf(stderr, " |");
            for (int t = 0; t < b->beams[j].n_tokens && t < 30; t++) fprintf(stderr, " %d", b->beams[j].tokens[t]);
            fprintf(stderr, "\n");
        }
    }
    return !bad;
}

static void run_case(int n_clips, int K, int V, int minp, int maxp, bool with_mask, uint32_t seed, int pattern) {
    gen g = {seed, V, (int)(seed % (uint32_t)V), maxp, pattern};
    std::vector<uint8_t> mask;
    if (with_mask) {
        mask.assign((size_t)V, 0);
        for (int v = 0; v < V; v++) mask[v] = v != g.eos && mix(seed ^ 0x55u, (uint32_t)v) % 3 == 0;
    }
    std::vector<int> bos(n_clips);
    for (int c = 0; c < n_clips; c++) bos[c] = (int)(mix(seed, 1000u + (uint32_t)c) % (uint32_t)V);
    char what[160];
    snprintf(what, sizeof what, "clips %d beam %d V %d min %d max %d mask %d seed %u pattern %d", n_clips, K, V, minp,
             maxp, (int)with_mask, seed, pattern);

    ac_beam_params hp = {K, minp, maxp, g.eos, V, with_mask ? mask.data() : nullptr};
    std::vector<ac_caption> ref(n_clips), got(n_clips);
    host_src hs;
    hs.g = &g;
    hs.stride = maxp + 1;
    hs.prefix.assign((size_t)n_clips * K * (maxp + 1), -1);
    hs.tmp = hs.prefix;
    ac_logits_source src = {&hs, hs_step, hs_reorder};
    EXPECT(ac_beam_search(&hp, n_clips, bos.data(), &src, ref.data()) == AC_OK, "%s: host search failed", what);

    emu_beam b(n_clips, K, V, minp, maxp, g.eos, with_mask ? mask.data() : nullptr);
    emu_buf<float> logits((size_t)b.max_rows * V);
    b.init(bos.data());
    int bad_steps = 0;
    for (int i = 0; i < maxp; i++) {
        // the device's rows must be the host's rows of this step (a search that finished everywhere stops)
        const int n_rows = b.n_rows[0];
        const step_rows *hr = i < (int)hs.steps.size() ? &hs.steps[i] : nullptr;
        bool same = hr ? n_rows == hr->n_rows : n_rows == 0;
        for (int r = 0; same && hr && r < n_rows; r++) {
            same = b.row_clip[r] == hr->row_clip[r] && b.tokens[r] == hr->tokens[r];
            for (int t = 0; same && t <= i; t++) same = b.prefix[b.cur][(size_t)r * b.stride + t] == hr->prefix[(size_t)r * (i + 1) + t];
        }
        if (!same && bad_steps++ == 0)
            fprintf(stderr, "  %s: step %d: device rows (%d) differ from host/beam.c's (%d)\n", what, i, n_rows,
                    hr ? hr->n_rows : 0);
        if (n_rows < 0 || n_rows > b.max_rows) break;
        for (size_t k = 0; k < (size_t)b.max_rows * V; k++) logits[k] = NAN;
        for (int r = 0; r < n_rows; r++) {
            const int c = b.row_clip[r];
            if (c < 0 || c >= n_clips) break;
            gen_logits(&g, c, &b.prefix[b.cur][(size_t)r * b.stride], i + 1, &logits[(size_t)r * V]);
        }
        b.step(i, logits.p());
    }
    EXPECT(bad_steps == 0, "%s: rows differ from host/beam.c at %d steps", what, bad_steps);
    b.results(got.data());
    for (int c = 0; c < n_clips; c++)
        EXPECT(same_caption(&ref[c], &got[c], what, c), "%s: clip %d differs from host/beam.c", what, c);
    if (getenv("EMU_VERBOSE")) fprintf(stderr, "  %s: %.2f s\n", what, (double)clock() / CLOCKS_PER_SEC);
}

// beam_compact alone over more clips than its block has threads (the scan walks chunks of COMPACT_THREADS with a
// carry), against a serial exclusive scan; finished clips (0 live) between live ones
static void test_compact(int n_clips, int K) {
    std::vector<int> n_live(n_clips), ksrc((size_t)n_clips * K), ktok((size_t)n_clips * K);
    std::vector<float> ksum((size_t)n_clips * K);
    for (int c = 0; c < n_clips; c++) n_live[c] = (int)(mix(77u, (uint32_t)c) % (uint32_t)(K + 1));
    for (size_t i = 0; i < ksrc.size(); i++) {
        ksrc[i] = (int)i * 3 + 1;
        ktok[i] = (int)i * 7 + 2;
        ksum[i] = -(float)i;
    }
    const size_t R = (size_t)n_clips * K;
    emu_buf<int> row_off(n_clips), src_row(R), tokens(R), row_clip(R), n_rows(1);
    emu_buf<float> sums(R);
    emu_launch({1, 1, 1}, {COMPACT_THREADS, 1, 1}, 0, [&] {
        beam_compact_kernel(n_clips, K, n_live.data(), row_off.p(), ksrc.data(), ktok.data(), ksum.data(), src_row.p(),
                            tokens.p(), sums.p(), row_clip.p(), n_rows.p());
    });
    int r = 0, bad = 0;
    for (int c = 0; c < n_clips; c++) {
        bad += row_off[c] != r;
        for (int j = 0; j < n_live[c]; j++, r++) {
            const size_t k = (size_t)c * K + j;
            bad += src_row[r] != ksrc[k] || tokens[r] != ktok[k] || sums[r] != ksum[k] || row_clip[r] != c;
        }
    }
    bad += n_rows[0] != r;
    EXPECT(!bad, "compact over %d clips (beam %d): %d wrong entries", n_clips, K, bad);
}

int main() {
    uint32_t seed = 1;
    test_compact(5, 3);
    test_compact(1024, 2);
    test_compact(2500, 4);
    // every pattern alone on one clip, then mixed batches (each clip its own pattern, so clips with different
    // live counts and finishing steps share the launches)
    const int beams[] = {1, 2, 3, 5};
    const int lens[][2] = {{0, 1}, {0, 2}, {1, 5}, {3, 7}, {9, 7}};
    int bi = 0;
    for (const auto &l : lens)
        for (int pat = 0; pat < PAT_N; pat++) {
            const int V = pat % 2 ? 17 : 41, K = beams[bi++ % 4];
            run_case(1, K, V, l[0], l[1], seed & 1, seed, pat);
            seed++;
        }
    run_case(7, 3, 301, 3, 8, true, seed++, 0);
    run_case(6, 2, 64, 0, 10, false, seed++, 3);
    run_case(3, 16, 16, 0, 4, false, seed++, 1);  // V == beam size: every token a candidate at step 0
    run_case(2, 16, 41, 2, 5, true, seed++, 0);   // the largest beam: 16 rounds of the merge
    run_case(3, 5, 5, 2, 7, true, seed++, 4);
    run_case(6, 4, 97, 1, 6, true, seed++, 2);
    run_case(2, 3, 4371, 3, 5, true, seed++, 0);  // the model's vocabulary: several tokens per thread
    printf("beam_search_emu: %d checks, %d failed; worst score difference %.3g (%.1f %% of TOL_SCORE_ABS)\n", g_checks,
           g_fail, g_worst_score, 100.0 * g_worst_score / TOL_SCORE_ABS);
    return g_fail ? 1 : 0;
}
