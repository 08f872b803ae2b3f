// Orchestration of the device decoder + beam search (see gpu_decoder.h); the layer sequence of host/model.c
// ac_decoder_step (nn.TransformerDecoderLayer, post-LN, GELU; conette aac_tfmer.py) on the live rows.
// Each step replays a CUDA graph captured once per shape (see graphs_wanted; the last few shapes are kept, and a
// capture that fails falls back to plain launches); AC_GPU_GRAPH=0 launches every kernel instead. AC_GPU_PROFILE=1
// times the parts of every step (kernels/gpu_prof.h), launching them without graphs.
// Layouts: x, att (rows, D); part: the sublayer ends' scratch (ac_gpu_linear_add_ln_scratch: up to rows x D x
// linear2's k chunks); qkv (rows, 3D) = q | k | v (reused as q (rows, D) for cross-attention);
// ff (rows, dim_feedforward); logits (rows, V); self-attention cache per layer (max_pred, rows, 2D) = k | v,
// indexed through the ancestor table anc (rows, max_pred); cross K/V per layer (total frames, 2D) = k | v.
// Rows are the beam search's (kernels/beam_search.h); *n_rows on the device bounds every kernel.
#include "attention_decode.h"
#include "beam_search.h"
#include "common.cuh"
#include "decoder_add_ln.h"
#include "decoder_embed.h"
#include "decoder_linear.h"
#include "gpu_decoder.h"
#include "gpu_prof.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEC_SLOT 1

namespace {

// AC_GPU_PROFILE=1: parts of a step, by kernel class ("linears" are the sublayers' linears with their residual
// LayerNorms, ac_gpu_linear_add_ln, whichever path; beam search: its init, steps and the live-row count each step
// copies to the host; gather: the cache indirection's reorder after the beam step)
enum { P_KV, P_EMBED, P_SA_LIN, P_SA, P_CA_LIN, P_CA, P_FFN, P_CLS, P_BEAM, P_GATHER, P_N };
const char *const P_NAMES[P_N] = {"cross K/V",     "embedding",       "self linears", "self-attention",
                                  "cross linears", "cross-attention", "FFN linears",  "classifier",
                                  "beam search",   "cache gather"};
static_assert(P_N <= AC_PROF_MAX_PARTS, "parts of the profile");

struct lin {
    const float *w, *b;
    const void *w16;    // bf16 copy, NULL in FP32
    const void *w16lo;  // bf16(w - w16): the split product (ac_gpu_linear), NULL in FP32 or with AC_LINEAR_SPLIT=0
};

struct layer {
    lin sa_in, sa_out, ca_q, ca_kv, ca_out, l1, l2;
    const float *n1_w, *n1_b, *n2_w, *n2_b, *n3_w, *n3_b;
};

// what a captured step depends on: shapes, parameters (beam_p: its search state is the set's own), and every
// buffer address. Not the batch's memory lengths:
// the cross K/V buffer's layers are cap_frames apart and max_len is rounded up (len_bucket), so batches of the same
// clip count whose lengths differ replay the same graphs.
struct graph_key {
    int n, R, maxT, max_len;
    int64_t cap_frames;
    ac_gpu_beam_params beam_p;
    const void *ptr[13];
};

// One captured shape: a graph per step, and the beam search state its graphs name (sized by the clip count).
// Several are kept (least recently used dropped) so that a bulk run's full batches and its last, smaller one, or
// two beam settings, do not recapture each other's graphs.
enum { GRAPH_SETS = 4, GRAPH_BACKOFF_MAX = 6 };
struct graph_set {
    graph_key key;
    cudaGraphExec_t *exec;  // key.maxT of them; NULL: an empty slot
    ac_gpu_beam *beam;
    uint64_t used;  // s->graph_clock at its last use
};

struct dec_state {
    int D, H, L, V, Fd;
    float eps, scale;
    const float *emb, *pos;
    lin cls;
    layer *layers;
    // buffers, grown on demand
    int cap_rows, cap_steps;
    int64_t cap_frames;
    int cap_clips;
    float *x, *qkv, *att, *part, *ff, *logits, *cache, *mem_kv;
    int *anc[2], *mem_off, *mem_len;
    int *n_rows_host;  // pinned, one per step
    cudaEvent_t *ev;
    int n_ev;
    ac_gpu_beam *beam;  // plain launches' search state, kept while its shape and parameters stay the same
    ac_gpu_beam_params beam_p;
    graph_set gsets[GRAPH_SETS];  // unless AC_GPU_GRAPH=0
    uint64_t graph_clock;
    int graph_fails;  // captures failed in a row
    int graph_skip;   // calls that would capture but launch plainly first: 2^graph_fails - 1 after a failure
    void **lo;  // the device buffers behind every lin's w16lo
    int n_lo;
    // AC_GPU_PROFILE=1: a mark after each launch (kernels/gpu_prof.h), summed per part once a call's work has
    // finished; printed by dec_free with the steps and the host's time issuing them
    ac_prof prof;
    int prof_steps;
    double prof_enqueue_ms;
};

void drop_graphs(dec_state *s);

// The per-call device buffers, all let go (capacities 0): at the end, and after an out-of-memory, so that a retry
// at a smaller batch starts from an empty device (as the encoder does: kernels/gpu_encoder.cu).
void free_buffers(dec_state *s) {
    void **d[] = {(void **)&s->x,      (void **)&s->qkv,    (void **)&s->att,    (void **)&s->part,
                  (void **)&s->ff,     (void **)&s->logits, (void **)&s->cache,  (void **)&s->mem_kv,
                  (void **)&s->anc[0], (void **)&s->anc[1], (void **)&s->mem_off, (void **)&s->mem_len};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        cudaFree(*d[i]);  // synchronises the device
        *d[i] = NULL;
    }
    s->cap_rows = s->cap_steps = s->cap_clips = 0;
    s->cap_frames = 0;
}

void dec_free(void *p) {
    dec_state *s = (dec_state *)p;
    if (!s) return;
    if (s->prof.calls) {
        double tot = 0;
        for (int i = 0; i < P_N; i++) tot += s->prof.ms[i];
        fprintf(stderr, "gpu decoder profile: %d calls, %d steps, %.3f ms of device time, %.3f ms issuing launches\n",
                s->prof.calls, s->prof_steps, tot, s->prof_enqueue_ms);
        for (int i = 0; i < P_N; i++)
            fprintf(stderr, "gpu decoder profile: %-15s %10.3f ms  %5.1f %%\n", P_NAMES[i], s->prof.ms[i],
                    tot > 0 ? 100 * s->prof.ms[i] / tot : 0);
    }
    ac_prof_free(&s->prof);
    free_buffers(s);
    cudaFreeHost(s->n_rows_host);
    for (int i = 0; i < s->n_ev; i++) cudaEventDestroy(s->ev[i]);
    free(s->ev);
    drop_graphs(s);
    ac_gpu_beam_free(s->beam);
    for (int i = 0; i < s->n_lo; i++) cudaFree(s->lo[i]);
    free(s->lo);
    free(s->layers);
    free(s);
}

// BF16 decoders take the split product unless AC_LINEAR_SPLIT=0 (plain bf16 operands: to time what the split
// costs; its captions differ from FP32 far more often, see kernels/decoder_linear_kernel.cuh)
int split_wanted(void) {
    const char *e = getenv("AC_LINEAR_SPLIT");
    return !(e && e[0] == '0');
}

ac_status get_f32(const ac_gpu_model *g, const char *name, const float **out) {
    *out = ac_gpu_f32(g, name);
    if (!*out)
        return ac_fail(AC_ERR_FORMAT, "gpu decoder: tensor %s missing from the device model (hint: convert the "
                       "checkpoint with tools/convert.py)", name);
    return AC_OK;
}

ac_status get_lin(const ac_gpu_model *g, dec_state *s, int l, const char *w, const char *b, lin *out) {
    char nw[256], nb[256];
    if (l >= 0) {
        snprintf(nw, sizeof nw, "model.decoder.layers.%d.%s", l, w);
        snprintf(nb, sizeof nb, "model.decoder.layers.%d.%s", l, b);
    } else {
        snprintf(nw, sizeof nw, "model.decoder.%s", w);
        snprintf(nb, sizeof nb, "model.decoder.%s", b);
    }
    ac_status st = get_f32(g, nw, &out->w);
    if (!st) st = get_f32(g, nb, &out->b);
    out->w16 = ac_gpu_model_precision(g) == AC_PREC_BF16 ? ac_gpu_bf16(g, nw) : NULL;
    out->w16lo = NULL;
    if (!st && ac_gpu_model_precision(g) == AC_PREC_BF16 && !out->w16)
        return ac_fail(AC_ERR_INTERNAL, "gpu decoder: no bf16 copy of %s in a BF16 model", nw);
    if (!st && out->w16 && split_wanted()) {
        const int64_t n = ac_gpu_numel(g, nw, NULL, NULL);
        void **lo = (void **)realloc(s->lo, sizeof(void *) * (size_t)(s->n_lo + 1));
        if (!lo) return ac_fail(AC_ERR_NOMEM, "gpu decoder: out of memory");
        s->lo = lo;
        CUDA_CHECK(cudaMalloc(&s->lo[s->n_lo], sizeof(uint16_t) * (size_t)n));
        out->w16lo = s->lo[s->n_lo++];
        st = ac_gpu_bf16_split_lo(out->w, out->w16, n, (void *)out->w16lo, ac_gpu_stream(g));
    }
    return st;
}

// rows [r0, r0 + n) of a linear layer's matrix (e.g. the q or k|v part of in_proj_weight)
lin sub_rows(lin a, int r0, int K) {
    lin s = a;
    s.w = a.w + (size_t)r0 * K;
    s.b = a.b + r0;
    if (a.w16) s.w16 = (const char *)a.w16 + (size_t)r0 * K * 2;  // bf16: 2 bytes per element
    if (a.w16lo) s.w16lo = (const char *)a.w16lo + (size_t)r0 * K * 2;
    return s;
}

ac_status load_weights(ac_gpu_model *g, dec_state **out) {
    const ac_model_config *c = ac_gpu_model_config(g);
    dec_state *s = (dec_state *)calloc(1, sizeof *s);
    if (!s) return ac_fail(AC_ERR_NOMEM, "gpu decoder: out of memory");
    s->D = c->decoder.d_model;
    s->H = c->decoder.nhead;
    s->L = c->decoder.num_layers;
    s->V = c->vocab_size;
    s->Fd = c->decoder.dim_feedforward;
    s->eps = (float)c->decoder.ln_eps;
    s->scale = (float)c->decoder.emb_scale;
    s->layers = (layer *)calloc((size_t)s->L, sizeof(layer));
    s->prof.on = ac_prof_wanted();
    ac_status st = s->layers ? AC_OK : ac_fail(AC_ERR_NOMEM, "gpu decoder: out of memory");
    if (!st && (c->decoder.norm_first || c->decoder.activation != AC_ACT_GELU || s->D % s->H))
        st = ac_fail(AC_ERR_FORMAT, "gpu decoder: only the post-LN GELU decoder with d_model divisible by nhead is "
                     "implemented (hint: the published CNext-trans layout)");
    if (!st) st = get_f32(g, "model.decoder.emb_layer.weight", &s->emb);
    if (!st) st = get_f32(g, "model.decoder.pos_encoding.pos_embedding", &s->pos);
    if (!st) st = get_lin(g, s, -1, "classifier.weight", "classifier.bias", &s->cls);
    const int D = s->D;
    for (int l = 0; l < s->L && !st; l++) {
        layer *y = &s->layers[l];
        lin ca_in;
        st = get_lin(g, s, l, "self_attn.in_proj_weight", "self_attn.in_proj_bias", &y->sa_in);
        if (!st) st = get_lin(g, s, l, "self_attn.out_proj.weight", "self_attn.out_proj.bias", &y->sa_out);
        if (!st) st = get_lin(g, s, l, "multihead_attn.in_proj_weight", "multihead_attn.in_proj_bias", &ca_in);
        if (!st) st = get_lin(g, s, l, "multihead_attn.out_proj.weight", "multihead_attn.out_proj.bias", &y->ca_out);
        if (!st) st = get_lin(g, s, l, "linear1.weight", "linear1.bias", &y->l1);
        if (!st) st = get_lin(g, s, l, "linear2.weight", "linear2.bias", &y->l2);
        if (st) break;
        y->ca_q = sub_rows(ca_in, 0, D);       // rows 0..D-1: queries
        y->ca_kv = sub_rows(ca_in, D, D);      // rows D..3D-1: keys then values (contiguous)
        char n[128];
#define NORM(i, wf, bf)                                                                  \
    snprintf(n, sizeof n, "model.decoder.layers.%d.norm%d.weight", l, i);               \
    if (!st) st = get_f32(g, n, &y->wf);                                                  \
    snprintf(n, sizeof n, "model.decoder.layers.%d.norm%d.bias", l, i);                 \
    if (!st) st = get_f32(g, n, &y->bf);
        NORM(1, n1_w, n1_b)
        NORM(2, n2_w, n2_b)
        NORM(3, n3_w, n3_b)
#undef NORM
    }
    if (st) {
        dec_free(s);
        return st;
    }
    *out = s;
    return AC_OK;
}

template <typename T>
ac_status grow(T **p, size_t n) {
    cudaFree(*p);
    *p = NULL;
    CUDA_CHECK(cudaMalloc((void **)p, sizeof(T) * (n ? n : 1)));
    return AC_OK;
}

// the sublayer ends' scratch for `rows` rows: the largest ac_gpu_linear_add_ln asks of the out_projs and linear2
size_t part_floats(const dec_state *s, int rows) {
    const lin &a = s->layers[0].sa_out, &f = s->layers[0].l2;
    const size_t p = ac_gpu_linear_add_ln_scratch(a.w16, rows, s->D, s->D);
    const size_t q = ac_gpu_linear_add_ln_scratch(f.w16, rows, s->D, s->Fd);
    return p > q ? p : q;
}

ac_status ensure_buffers(dec_state *s, int rows, int steps, int64_t frames, int clips) {
    ac_status st = AC_OK;
    const size_t D = (size_t)s->D;
    if (rows > s->cap_rows || steps > s->cap_steps || frames > s->cap_frames || clips > s->cap_clips)
        drop_graphs(s);  // they name the buffers about to be let go
    if (rows > s->cap_rows || steps > s->cap_steps) {
        const int R = rows > s->cap_rows ? rows : s->cap_rows, T = steps > s->cap_steps ? steps : s->cap_steps;
        s->cap_rows = s->cap_steps = 0;
        if (!st) st = grow(&s->x, R * D);
        if (!st) st = grow(&s->qkv, R * 3 * D);
        if (!st) st = grow(&s->att, R * D);
        if (!st) st = grow(&s->part, part_floats(s, R));
        if (!st) st = grow(&s->ff, (size_t)R * s->Fd);
        if (!st) st = grow(&s->logits, (size_t)R * s->V);
        if (!st) st = grow(&s->cache, (size_t)s->L * T * R * 2 * D);
        if (!st) st = grow(&s->anc[0], (size_t)R * T);
        if (!st) st = grow(&s->anc[1], (size_t)R * T);
        if (st) return st;
        s->cap_rows = R;
        s->cap_steps = T;
    }
    if (frames > s->cap_frames) {
        s->cap_frames = 0;
        if ((st = grow(&s->mem_kv, (size_t)s->L * frames * 2 * D))) return st;
        s->cap_frames = frames;
    }
    if (clips > s->cap_clips) {
        s->cap_clips = 0;
        if ((st = grow(&s->mem_off, clips)) || (st = grow(&s->mem_len, clips))) return st;
        s->cap_clips = clips;
    }
    if (steps > s->n_ev) {
        cudaFreeHost(s->n_rows_host);
        s->n_rows_host = NULL;
        for (int i = 0; i < s->n_ev; i++) cudaEventDestroy(s->ev[i]);
        free(s->ev);
        s->n_ev = 0;
        s->ev = (cudaEvent_t *)calloc((size_t)steps, sizeof(cudaEvent_t));
        if (!s->ev) return ac_fail(AC_ERR_NOMEM, "gpu decoder: out of memory");
        CUDA_CHECK(cudaMallocHost((void **)&s->n_rows_host, sizeof(int) * steps));
        for (; s->n_ev < steps; s->n_ev++) CUDA_CHECK(cudaEventCreateWithFlags(&s->ev[s->n_ev], cudaEventDisableTiming));
    }
    return AC_OK;
}

double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return 1e3 * (double)t.tv_sec + 1e-6 * (double)t.tv_nsec;
}


// Every launch of decode step i, in stream order (the cache indirection buffer in use at step i is anc[i % 2]).
// Under AC_GPU_PROFILE each launch is followed by a mark naming its part.
ac_status enqueue_step(dec_state *s, ac_gpu_beam *beam, int n, int R, int maxT, int max_len, int i,
                       cudaStream_t stream) {
    const ac_gpu_beam_rows rows = ac_gpu_beam_rows_view(beam);
    const int *nr = rows.n_rows, D = s->D, cur = i % 2;
    // a launch's status, its profile mark after it
    auto mark = [&](ac_status st, int part) {
        if (!st) ac_prof_mark(&s->prof, part, stream);
        return st;
    };
    ac_status st = mark(ac_gpu_decoder_embed(rows.tokens, R, nr, s->emb, s->V, s->pos, i, s->scale, D, s->x, stream),
                        P_EMBED);
    // one of the step's linears over the live rows (bf16, or the split product, per the weights' copies)
    auto run = [&](const float *in, int K, const lin &w, int N, int gelu, float *out, int part) {
        return mark(ac_gpu_linear(in, R, nr, K, w.w, w.w16, w.w16lo, w.b, N, gelu, out, stream), part);
    };
    // a sublayer's end, x = LayerNorm(x + in . W^T + b), whichever path ac_gpu_linear_add_ln takes (one launch
    // or two, profiled as the linear's part)
    auto lin_ln = [&](const float *in, int K, const lin &w, const float *ln_w, const float *ln_b, int part) {
        return mark(ac_gpu_linear_add_ln(in, R, nr, K, w.w, w.w16, w.w16lo, w.b, D, s->x, ln_w, ln_b, s->eps, s->part,
                                         stream), part);
    };
    for (int l = 0; l < s->L && !st; l++) {
        const layer &y = s->layers[l];
        float *cache = s->cache + (size_t)l * maxT * R * 2 * D;
        st = run(s->x, D, y.sa_in, 3 * D, 0, s->qkv, P_SA_LIN);
        if (!st) st = mark(ac_gpu_attention_self(s->qkv, cache, s->anc[cur], i, maxT, rows.row_off, rows.n_live, n, R,
                                                 D, s->H, s->att, stream), P_SA);
        if (!st) st = lin_ln(s->att, D, y.sa_out, y.n1_w, y.n1_b, P_SA_LIN);
        if (!st) st = run(s->x, D, y.ca_q, D, 0, s->qkv, P_CA_LIN);
        if (!st) st = mark(ac_gpu_attention_cross(s->qkv, s->mem_kv + (size_t)l * s->cap_frames * 2 * D, s->mem_off,
                                                  s->mem_len, max_len, rows.row_off, rows.n_live, n, D, s->H, s->att,
                                                  stream), P_CA);
        if (!st) st = lin_ln(s->att, D, y.ca_out, y.n2_w, y.n2_b, P_CA_LIN);
        if (!st) st = run(s->x, D, y.l1, s->Fd, 1, s->ff, P_FFN);
        if (!st) st = lin_ln(s->ff, s->Fd, y.l2, y.n3_w, y.n3_b, P_FFN);
    }
    if (!st) st = run(s->x, D, s->cls, s->V, 0, s->logits, P_CLS);
    if (!st) st = mark(ac_gpu_beam_step(beam, i, s->logits), P_BEAM);
    // the cache indirection follows the rows: new row r continues old row src_row[r]
    if (!st && i + 1 < maxT)
        st = mark(ac_gpu_gather_rows(s->anc[cur], s->anc[1 - cur], maxT, i + 1, rows.src_row, NULL, nr, R, stream),
                  P_GATHER);
    return st;
}

// max_len rounded up to a multiple of 32 frames (~10 s of CoNeTTE memory), within what the cross-attention's shared
// memory holds: it only sizes that staging (each clip attends its own mem_len), so the results are the same, and
// batches whose longest clip differs a little replay the same captured graphs
int len_bucket(int max_len, int D, int H) {
    const int b = (max_len + 31) / 32 * 32;
    return b <= ac_gpu_attention_cross_max_len(D, H) ? b : max_len;
}

// Each step's launches captured once per shape as a CUDA graph and replayed: one launch per step instead of ~60,
// whose host issue time (a few us each, ~150 us a step) is of the order of a step's device time at 768 rows by
// count (the fifteenth session's note in bench/RESULTS.md); issue #6 asks for the step loop captured. The
// default since 2026-11-29, not yet timed: gpu-check times AC_GPU_GRAPH=0 beside it, with one worker and two.
// Off with AC_GPU_GRAPH=0, under AC_SYNC (a capture can't synchronise) and while profiling (the parts' events).
int graphs_wanted(const dec_state *s) {
    const char *e = getenv("AC_GPU_GRAPH");
    return !(e && e[0] == '0') && !ac_debug_sync() && !s->prof.on;
}

void drop_set(graph_set *g) {
    for (int i = 0; g->exec && i < g->key.maxT; i++)
        if (g->exec[i]) cudaGraphExecDestroy(g->exec[i]);
    free(g->exec);
    ac_gpu_beam_free(g->beam);
    memset(g, 0, sizeof *g);
}

// every captured shape: when the buffers they name are let go
void drop_graphs(dec_state *s) {
    for (int i = 0; i < GRAPH_SETS; i++) drop_set(&s->gsets[i]);
}

// Captures steps 0..k.maxT-1 of shape k into g with a search state of its own (kernel arguments, buffers and the
// beam state's double-buffer parity are fixed per step, so a step's graph is valid for every call of the same
// shape). Leaves the beam's host parity to be reset by ac_gpu_beam_init. On failure g is left empty and the stream
// no longer captures.
ac_status capture_set(dec_state *s, graph_set *g, const graph_key &k, cudaStream_t stream) {
    drop_set(g);
    g->exec = (cudaGraphExec_t *)calloc((size_t)k.maxT, sizeof(cudaGraphExec_t));
    if (!g->exec) return ac_fail(AC_ERR_NOMEM, "gpu decoder: out of memory");
    g->key = k;
    ac_status bst = ac_gpu_beam_create(&k.beam_p, stream, &g->beam);
    if (bst) {
        drop_set(g);
        return bst;
    }
    ac_gpu_beam *beam = g->beam;
    for (int i = 0; i < k.maxT; i++) {
        cudaGraph_t gr = NULL;
        cudaError_t e = cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed);
        if (e != cudaSuccess) {
            drop_set(g);
            return ac_fail(AC_ERR_CUDA, "gpu decoder: capturing step %d: %s", i, cudaGetErrorString(e));
        }
        ac_status st = enqueue_step(s, beam, k.n, k.R, k.maxT, k.max_len, i, stream);
        e = cudaStreamEndCapture(stream, &gr);  // ends the capture whatever happened in it
        if (!st && e == cudaSuccess) e = cudaGraphInstantiate(&g->exec[i], gr, 0);
        if (gr) cudaGraphDestroy(gr);
        if (st || e != cudaSuccess) {
            drop_set(g);
            return st ? st : ac_fail(AC_ERR_CUDA, "gpu decoder: capturing step %d: %s", i, cudaGetErrorString(e));
        }
    }
    return AC_OK;
}

// The step graphs for key k: a kept set, or a new capture in the least recently used slot. NULL when the capture
// failed: CUDA invalidates a capture when any thread synchronises its device meanwhile (cudaDeviceSynchronize, a
// synchronous copy, cudaFree: another worker on the same GPU growing its buffers), so a failed capture is not
// an error of the call: its steps run as plain launches, and a later call captures again. After f failures in a
// row the next 2^f - 1 calls that would capture (at most 63) launch plainly without trying: a worker starting
// beside another that is loading its weights tries a few times, not at every batch, and never gives up for good.
const graph_set *step_graphs(dec_state *s, const graph_key &k, cudaStream_t stream, ac_gpu_decode_stats *stats) {
    graph_set *slot = &s->gsets[0];
    for (int i = 0; i < GRAPH_SETS; i++) {
        graph_set *g = &s->gsets[i];
        if (g->exec && !memcmp(&g->key, &k, sizeof k)) {
            g->used = ++s->graph_clock;
            return g;
        }
        if (!g->exec ? slot->exec != NULL : slot->exec && g->used < slot->used) slot = g;
    }
    if (s->graph_skip > 0) {
        s->graph_skip--;
        return NULL;
    }
    if (capture_set(s, slot, k, stream)) {
        cudaGetLastError();  // a refused launch's error is the capture's, not the next kernel's
        ac_clear_error();
        if (s->graph_fails < GRAPH_BACKOFF_MAX) s->graph_fails++;
        s->graph_skip = (1 << s->graph_fails) - 1;
        if (stats) stats->graph_fallback = 1;
        return NULL;
    }
    s->graph_fails = 0;
    slot->used = ++s->graph_clock;
    if (stats) stats->graphs_captured = k.maxT;
    return slot;
}

}  // namespace

extern "C" size_t ac_gpu_decoder_bytes(const ac_model_config *c, int n, int beam, int max_pred, int64_t frames) {
    const size_t D = (size_t)c->decoder.d_model, L = (size_t)c->decoder.num_layers, R = (size_t)n * beam;
    const size_t T = (size_t)max_pred, V = (size_t)c->vocab_size, F = (size_t)c->decoder.dim_feedforward;
    // x, att; the sublayer ends' scratch (BF16's bound: ac_gpu_linear_add_ln_scratch); qkv; ff; logits
    size_t f = R * D * 2 + R * D * (size_t)ac_gpu_linear_splitk_chunks((int)F) + R * 3 * D + R * F + R * V;
    f += L * T * R * 2 * D;                             // self-attention cache
    f += L * (size_t)frames * 2 * D;                    // cross-attention keys and values
    size_t i = 2 * R * T + 2 * (size_t)n;               // cache indirection; clip table
    // beam state (kernels/beam_search.cu): per clip 3 ints, per clip-slot 4 ints + 1 float + the finished tokens,
    // per row 4 ints + 1 float + two prefix tables
    i += 3 * (size_t)n + 4 * R + R * T + 4 * R + 2 * R * (T + 1) + 1;
    f += R + R + R;                                     // keep_sum, sums, out_score
    return 4 * (f + i) + V;                             // + the repetition mask (bytes)
}

extern "C" ac_status ac_gpu_resolve_params(const ac_model_config *c, const ac_decode_params *p, const uint8_t *forbid,
                                           ac_beam_params *bp, int *bos) {
    bp->beam_size = p && p->beam_size > 0 ? p->beam_size : c->decoding.beam_size;
    bp->min_pred_size = p && p->min_pred_size >= 0 ? p->min_pred_size : c->decoding.min_pred_size;
    bp->max_pred_size = p && p->max_pred_size > 0 ? p->max_pred_size : c->decoding.max_pred_size;
    bp->eos_id = c->decoding.eos_id;
    bp->vocab_size = c->vocab_size;
    bp->forbid_rep_mask = forbid;
    if (bp->beam_size > AC_MAX_BEAM || bp->max_pred_size > AC_MAX_PRED - 1 ||
        bp->max_pred_size + 1 > c->decoder.max_positions)
        return ac_fail(AC_ERR_INVALID_ARG, "beam size %d (max %d) or max length %d (max %d) out of range", bp->beam_size,
                       AC_MAX_BEAM, bp->max_pred_size, AC_MAX_PRED - 1);
    const int task = p && p->task >= 0 ? p->task : c->decoding.default_task;
    if (c->decoding.n_tasks > 0 && (task < 0 || task >= c->decoding.n_tasks))
        return ac_fail(AC_ERR_INVALID_ARG, "task %d: the model has %d tasks", task, c->decoding.n_tasks);
    *bos = c->decoding.n_tasks > 0 ? (int)c->decoding.task_token_ids[task] : c->decoding.bos_id;
    return AC_OK;
}

extern "C" ac_status ac_gpu_decode(ac_gpu_model *g, int n, const float *memory, const int64_t *mem_off,
                                   const int *n_frames, const int *mem_len, const int *bos_ids, const ac_beam_params *p,
                                   ac_caption *out, ac_gpu_decode_stats *stats) {
    const double t0 = now_ms();
    if (stats) memset(stats, 0, sizeof *stats);
    if (n <= 0) return AC_OK;
    ac_status use = ac_gpu_model_use(g);  // its buffers, events and graphs belong to the current device
    if (use) return use;
    const ac_model_config *c = ac_gpu_model_config(g);
    if (!memory || !mem_off || !n_frames || !mem_len || !bos_ids || !p || !out || p->vocab_size != c->vocab_size ||
        p->max_pred_size < 1 || p->max_pred_size > c->decoder.max_positions)
        return ac_fail(AC_ERR_INVALID_ARG, "gpu decode: %d clips, vocabulary %d (model %d), max length %d (positions %d)",
                       n, p ? p->vocab_size : -1, c->vocab_size, p ? p->max_pred_size : -1, c->decoder.max_positions);
    int64_t frames = 0;
    int max_len = 1;
    int *off32 = (int *)malloc(sizeof(int) * n);
    if (!off32) return ac_fail(AC_ERR_NOMEM, "gpu decode: out of memory");
    for (int i = 0; i < n; i++) {
        if (n_frames[i] < 1 || mem_len[i] < 1 || mem_len[i] > n_frames[i] || mem_off[i] < 0 ||
            mem_off[i] + n_frames[i] > INT_MAX) {
            free(off32);
            return ac_fail(AC_ERR_INVALID_ARG, "gpu decode: clip %d: %d frames at %lld, %d valid", i, n_frames[i],
                           (long long)mem_off[i], mem_len[i]);
        }
        off32[i] = (int)mem_off[i];
        if (mem_off[i] + n_frames[i] > frames) frames = mem_off[i] + n_frames[i];
        if (mem_len[i] > max_len) max_len = mem_len[i];
    }

    dec_state *s = (dec_state *)ac_gpu_state(g, DEC_SLOT);
    ac_status st = AC_OK;
    if (!s) {
        if ((st = load_weights(g, &s))) {
            free(off32);
            return st;
        }
        if ((st = ac_gpu_state_attach(g, DEC_SLOT, s, dec_free))) {
            dec_free(s);
            free(off32);
            return st;
        }
    }
    const int K = p->beam_size, maxT = p->max_pred_size, R = n * K, D = s->D;
    max_len = len_bucket(max_len, D, s->H);
    cudaStream_t stream = ac_gpu_stream(g);
    ac_gpu_beam *beam = NULL;
    ac_gpu_beam_params bp = {n, K, p->min_pred_size, maxT, p->eos_id, p->vocab_size, p->forbid_rep_mask};
    int steps = 0;
    double enqueue_ms = 0;
    const int use_graph = graphs_wanted(s);
    cudaGraphExec_t *graphs = NULL;  // the step graphs this call replays (NULL: plain launches)
    if ((st = ensure_buffers(s, R, maxT, frames, n))) goto done;
    {
        cudaError_t e = cudaMemcpyAsync(s->mem_off, off32, sizeof(int) * n, cudaMemcpyHostToDevice, stream);
        if (e == cudaSuccess) e = cudaMemcpyAsync(s->mem_len, mem_len, sizeof(int) * n, cudaMemcpyHostToDevice, stream);
        if (e != cudaSuccess) {
            st = ac_fail(AC_ERR_CUDA, "gpu decode: uploading the clip table: %s", cudaGetErrorString(e));
            goto done;
        }
    }
    // cross-attention keys and values: once per clip and layer, shared by every beam (never replicated)
    ac_prof_mark(&s->prof, P_KV, stream);  // opens the call's first span (after the clip table's upload)
    for (int l = 0; l < s->L && !st; l++) {
        const lin &w = s->layers[l].ca_kv;
        st = ac_gpu_linear(memory, (int)frames, NULL, D, w.w, w.w16, w.w16lo, w.b, 2 * D, 0,
                           s->mem_kv + (size_t)l * s->cap_frames * 2 * D, stream);
        if (!st) ac_prof_mark(&s->prof, P_KV, stream);
    }
    if (st) goto done;
    if (use_graph) {
        graph_key k;
        memset(&k, 0, sizeof k);
        k.n = n;
        k.R = R;
        k.maxT = maxT;
        k.max_len = max_len;
        k.cap_frames = s->cap_frames;
        k.beam_p = bp;
        const void *ptrs[13] = {s->x, s->qkv, s->att, s->part, s->ff, s->logits, s->cache, s->mem_kv, s->anc[0],
                                s->anc[1], s->mem_off, s->mem_len, s};
        memcpy(k.ptr, ptrs, sizeof ptrs);
        if (const graph_set *gs = step_graphs(s, k, stream, stats)) {
            graphs = gs->exec;
            beam = gs->beam;
        }
    }
    if (!graphs) {  // plain launches
        if (s->beam && !memcmp(&s->beam_p, &bp, sizeof bp)) {
            beam = s->beam;
        } else {
            ac_gpu_beam_free(s->beam);
            s->beam = NULL;
            if ((st = ac_gpu_beam_create(&bp, stream, &beam))) goto done;
            s->beam = beam;
            s->beam_p = bp;
        }
    }
    if ((st = ac_gpu_beam_init(beam, bos_ids))) goto done;
    ac_prof_mark(&s->prof, P_BEAM, stream);
    {
        const int *nr = ac_gpu_beam_rows_view(beam).n_rows;
        for (int i = 0; i < maxT && !st; i++) {
            // one step behind: when the rows left after step i-2 were none, step i-1 was already empty
            if (i >= 2) {
                cudaError_t e = cudaEventSynchronize(s->ev[i - 2]);
                if (e != cudaSuccess) {
                    st = ac_fail(AC_ERR_CUDA, "gpu decode: step %d: %s (hint: run with AC_SYNC=1)", i - 2,
                                 cudaGetErrorString(e));
                    break;
                }
                if (s->n_rows_host[i - 2] == 0) break;
            }
            steps = i + 1;
            const double t_enq = now_ms();
            if (graphs) {
                cudaError_t e = cudaGraphLaunch(graphs[i], stream);
                if (e != cudaSuccess) st = ac_fail(AC_ERR_CUDA, "gpu decode: step %d graph: %s", i, cudaGetErrorString(e));
            } else {
                st = enqueue_step(s, beam, n, R, maxT, max_len, i, stream);
            }
            if (!st) {
                cudaError_t e = cudaMemcpyAsync(&s->n_rows_host[i], nr, sizeof(int), cudaMemcpyDeviceToHost, stream);
                if (e == cudaSuccess) e = cudaEventRecord(s->ev[i], stream);
                if (e != cudaSuccess) st = ac_fail(AC_ERR_CUDA, "gpu decode: step %d: %s", i, cudaGetErrorString(e));
                ac_prof_mark(&s->prof, P_BEAM, stream);
            }
            enqueue_ms += now_ms() - t_enq;
        }
    }
    if (!st) st = ac_gpu_beam_results(beam, out);
    if (!st && ac_prof_collect(&s->prof)) {
        s->prof_steps += steps;
        s->prof_enqueue_ms += enqueue_ms;
    }
done:
    if (st && (beam || st == AC_ERR_NOMEM)) {  // after a failure, nothing of this search is reused
        cudaStreamSynchronize(stream);
        drop_graphs(s);  // with their search states
        ac_gpu_beam_free(s->beam);
        s->beam = NULL;
        if (st == AC_ERR_NOMEM) free_buffers(s);
    }
    free(off32);
    s->prof.n = 0;  // a failed call's marks are dropped
    if (stats) {
        stats->steps = steps;
        stats->enqueue_ms = enqueue_ms;
        stats->graphs = graphs != NULL;
        stats->ms = now_ms() - t0;
    }
    return st;
}
