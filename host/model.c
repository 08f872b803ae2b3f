// CNext-trans on the CPU (see model.h). Mirrors, at batch size 1 per clip:
//   front end + bn0      conette nn/encoders/convnext.py:144-180, 283-292   (host/ref/ref_logmel.c)
//   stem, downsamples    convnext.py:207-217 (conv, channels_first LayerNorm eps 1e-6)
//   ConvNeXt blocks      convnext.py:22-74 (dwconv 7x7, LN, Linear d->4d, erf GELU, Linear 4d->d, layer scale)
//   frame embeddings     convnext.py:302-315 (mean over frequency; frame_embs_lens)
//   projection           pl_modules/common.py:59-78 (Linear + ReLU)
//   decoder              nn/decoders/aac_tfmer.py (emb * sqrt(D) + positions; nn.TransformerDecoderLayer post-LN,
//                        GELU; classifier), with per-row self-attention KV caches and per-clip cross K/V
//   beam search          host/beam.c (nn/decoding/beam.py)
// Activations are channels-last (T, F, C); dumps are converted to the upstream layouts.
#include "model.h"
#include "beam.h"
#include "ref/ref_logmel.h"
#include "ref/ref_ops.h"
#include "status.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// AC_PROFILE=1 in the environment: time spent per part of the model, printed to stderr by ac_model_free.
enum { P_FRONT, P_STEM, P_DW, P_MLP, P_DOWN, P_HEAD, P_DEC, P_N };
static const char *const P_NAMES[P_N] = {"front end", "stem", "dwconv", "ln+mlp", "downsample", "frame+proj",
                                         "decoder"};
static double g_prof[P_N];
static int g_prof_on = -1;
static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static inline double prof_mark(int part, double t0) {
    if (g_prof_on < 0) g_prof_on = getenv("AC_PROFILE") && getenv("AC_PROFILE")[0] == '1';
    if (!g_prof_on) return 0;
    double t = now_s();
    if (part >= 0) g_prof[part] += t - t0;
    return t;
}

typedef struct {
    float *dw_w, *dw_b, *ln_w, *ln_b, *pw1_w, *pw1_b, *pw2_w, *pw2_b, *scale;
} block_w;

typedef struct {
    float *sa_in_w, *sa_in_b, *sa_out_w, *sa_out_b, *ca_in_w, *ca_in_b, *ca_out_w, *ca_out_b;
    float *l1_w, *l1_b, *l2_w, *l2_b, *n1_w, *n1_b, *n2_w, *n2_b, *n3_w, *n3_b;
} layer_w;

struct ac_model {
    ac_model_file *mf;
    const ac_model_config *cfg;
    ac_frontend fe;
    float *stem_w, *stem_b, *stem_ln_w, *stem_ln_b;
    float *ds_ln_w[4], *ds_ln_b[4], *ds_w[4], *ds_b[4];  // index 1..3
    block_w *blocks[4];
    float *proj_w, *proj_b;
    float *emb, *pos, *cls_w, *cls_b;
    layer_w *layers;
    uint8_t *forbid;
    float **owned;  // every converted tensor, freed by ac_model_free
    int n_owned, cap_owned;
};

const ac_model_config *ac_model_config_of(const ac_model *m) { return m->cfg; }
const ac_frontend *ac_model_frontend(const ac_model *m) { return &m->fe; }

void ac_model_free(ac_model *m) {
    if (!m) return;
    if (g_prof_on == 1) {
        double tot = 0;
        for (int i = 0; i < P_N; i++) tot += g_prof[i];
        for (int i = 0; i < P_N; i++)
            fprintf(stderr, "profile: %-11s %8.3f s  %5.1f %%\n", P_NAMES[i], g_prof[i], tot > 0 ? 100 * g_prof[i] / tot : 0);
    }
    ac_stft_plan_free(m->fe.stft_plan);
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    for (int s = 0; s < 4; s++) free(m->blocks[s]);
    free(m->layers);
    free(m->forbid);
    ac_model_file_close(m->mf);
    free(m);
}

// The float32 copy of tensor `name` (printf-style), or NULL with *st set.
static float *W(ac_model *m, ac_status *st, const char *fmt, ...) AC_PRINTF(3, 4);
static float *W(ac_model *m, ac_status *st, const char *fmt, ...) {
    if (*st) return NULL;
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const ac_tensor *t;
    if ((*st = ac_model_file_tensor(m->mf, name, &t)) != AC_OK) return NULL;
    float *f = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
    if (m->n_owned == m->cap_owned) {
        m->cap_owned = m->cap_owned ? 2 * m->cap_owned : 256;
        float **o = realloc(m->owned, sizeof(float *) * m->cap_owned);
        if (!o) {
            free(f);
            *st = ac_fail(AC_ERR_NOMEM, "model: out of memory");
            return NULL;
        }
        m->owned = o;
    }
    if (!f) {
        *st = ac_fail(AC_ERR_NOMEM, "%s: out of memory for %s", ac_model_file_name(m->mf), name);
        return NULL;
    }
    m->owned[m->n_owned++] = f;
    if ((*st = ac_tensor_to_f32(t, f)) != AC_OK) return NULL;
    return f;
}

#define E "preprocessor.encoder."

ac_status ac_model_load(const char *path, ac_model **out) {
    *out = NULL;
    ac_model *m = calloc(1, sizeof *m);
    if (!m) return ac_fail(AC_ERR_NOMEM, "%s: out of memory", path);
    ac_status st = ac_model_file_open(path, &m->mf);
    if (st) {
        free(m);
        return st;
    }
    const ac_model_config *c = m->cfg = ac_model_file_config(m->mf);
    if (c->encoder.stem_stride[0] != c->encoder.stem_kernel[0] || c->encoder.stem_stride[1] != c->encoder.stem_kernel[1] ||
        c->encoder.in_chans != 1 || c->decoder.norm_first || c->frontend.win_length != c->frontend.n_fft) {
        ac_model_free(m);
        return ac_fail(AC_ERR_FORMAT, "%s: unsupported variant (stem stride != kernel, in_chans != 1, pre-LN decoder or "
                       "win_length != n_fft) (hint: only the published CNext-trans layout is implemented)", path);
    }
    ac_frontend *fe = &m->fe;
    fe->sample_rate = c->frontend.sample_rate;
    fe->n_fft = c->frontend.n_fft;
    fe->hop = c->frontend.hop;
    fe->n_mels = c->frontend.n_mels;
    fe->fmin = (float)c->frontend.fmin;
    fe->fmax = (float)c->frontend.fmax;
    fe->amin = (float)c->frontend.amin;
    fe->bn_eps = (float)c->frontend.bn_eps;
    fe->conv_real = W(m, &st, E "spectrogram_extractor.stft.conv_real.weight");
    fe->conv_imag = W(m, &st, E "spectrogram_extractor.stft.conv_imag.weight");
    fe->melW = W(m, &st, E "logmel_extractor.melW");
    fe->bn0_weight = W(m, &st, E "bn0.weight");
    fe->bn0_bias = W(m, &st, E "bn0.bias");
    fe->bn0_running_mean = W(m, &st, E "bn0.running_mean");
    fe->bn0_running_var = W(m, &st, E "bn0.running_var");
    m->stem_w = W(m, &st, E "downsample_layers.0.0.weight");
    m->stem_b = W(m, &st, E "downsample_layers.0.0.bias");
    m->stem_ln_w = W(m, &st, E "downsample_layers.0.1.weight");
    m->stem_ln_b = W(m, &st, E "downsample_layers.0.1.bias");
    for (int i = 1; i < 4; i++) {
        m->ds_ln_w[i] = W(m, &st, E "downsample_layers.%d.0.weight", i);
        m->ds_ln_b[i] = W(m, &st, E "downsample_layers.%d.0.bias", i);
        m->ds_w[i] = W(m, &st, E "downsample_layers.%d.1.weight", i);
        m->ds_b[i] = W(m, &st, E "downsample_layers.%d.1.bias", i);
    }
    for (int s = 0; s < 4 && !st; s++) {
        m->blocks[s] = calloc((size_t)c->encoder.depths[s], sizeof(block_w));
        if (!m->blocks[s]) st = ac_fail(AC_ERR_NOMEM, "%s: out of memory", path);
        for (int b = 0; b < c->encoder.depths[s] && !st; b++) {
            block_w *k = &m->blocks[s][b];
            k->dw_w = W(m, &st, E "stages.%d.%d.dwconv.weight", s, b);
            k->dw_b = W(m, &st, E "stages.%d.%d.dwconv.bias", s, b);
            k->ln_w = W(m, &st, E "stages.%d.%d.norm.weight", s, b);
            k->ln_b = W(m, &st, E "stages.%d.%d.norm.bias", s, b);
            k->pw1_w = W(m, &st, E "stages.%d.%d.pwconv1.weight", s, b);
            k->pw1_b = W(m, &st, E "stages.%d.%d.pwconv1.bias", s, b);
            k->pw2_w = W(m, &st, E "stages.%d.%d.pwconv2.weight", s, b);
            k->pw2_b = W(m, &st, E "stages.%d.%d.pwconv2.bias", s, b);
            k->scale = W(m, &st, E "stages.%d.%d.scale_layer", s, b);
        }
    }
    m->proj_w = W(m, &st, "model.projection.2.weight");
    m->proj_b = W(m, &st, "model.projection.2.bias");
    m->emb = W(m, &st, "model.decoder.emb_layer.weight");
    m->pos = W(m, &st, "model.decoder.pos_encoding.pos_embedding");
    m->cls_w = W(m, &st, "model.decoder.classifier.weight");
    m->cls_b = W(m, &st, "model.decoder.classifier.bias");
    if (!st) {
        m->layers = calloc((size_t)c->decoder.num_layers, sizeof(layer_w));
        if (!m->layers) st = ac_fail(AC_ERR_NOMEM, "%s: out of memory", path);
    }
    for (int l = 0; l < c->decoder.num_layers && !st; l++) {
        layer_w *y = &m->layers[l];
#define L_(field, suffix) y->field = W(m, &st, "model.decoder.layers.%d." suffix, l)
        L_(sa_in_w, "self_attn.in_proj_weight");
        L_(sa_in_b, "self_attn.in_proj_bias");
        L_(sa_out_w, "self_attn.out_proj.weight");
        L_(sa_out_b, "self_attn.out_proj.bias");
        L_(ca_in_w, "multihead_attn.in_proj_weight");
        L_(ca_in_b, "multihead_attn.in_proj_bias");
        L_(ca_out_w, "multihead_attn.out_proj.weight");
        L_(ca_out_b, "multihead_attn.out_proj.bias");
        L_(l1_w, "linear1.weight");
        L_(l1_b, "linear1.bias");
        L_(l2_w, "linear2.weight");
        L_(l2_b, "linear2.bias");
        L_(n1_w, "norm1.weight");
        L_(n1_b, "norm1.bias");
        L_(n2_w, "norm2.weight");
        L_(n2_b, "norm2.bias");
        L_(n3_w, "norm3.weight");
        L_(n3_b, "norm3.bias");
#undef L_
    }
    if (!st) {
        const ac_tensor *t;
        st = ac_model_file_tensor(m->mf, "model.forbid_rep_mask", &t);
        if (!st) {
            m->forbid = malloc((size_t)t->numel);
            if (!m->forbid) st = ac_fail(AC_ERR_NOMEM, "%s: out of memory", path);
            else memcpy(m->forbid, t->data, (size_t)t->numel);
        }
    }
    if (!st) st = ac_stft_plan_create(&m->fe, &m->fe.stft_plan);
    if (st) {
        ac_model_free(m);
        return st;
    }
    *out = m;
    return AC_OK;
}

// ---- encoder ----------------------------------------------------------------------------------------------------
static void stage_dims(const ac_model *m, int64_t T, int *t_out /*[5]: after stem, stage 1..3 downsamples*/) {
    const ac_model_config *c = m->cfg;
    int t = ref_conv2d_patch_out((int)T, c->encoder.stem_kernel[0], c->encoder.stem_padding[0]);
    t_out[0] = t;
    for (int i = 1; i < 4; i++) t_out[i] = t = t < 2 ? 0 : ref_conv2d_patch_out(t, 2, 0);
}

int64_t ac_model_min_samples(const ac_model *m) {
    int64_t n = ac_frontend_min_samples(&m->fe);
    for (;; n += m->fe.hop / 4 > 0 ? m->fe.hop / 4 : 1) {
        int t[4];
        stage_dims(m, ac_frontend_n_frames(&m->fe, n), t);
        if (t[3] >= 1) return n;
    }
}

// (T, F, C) channels-last -> (C, T, F) for a dump
static void dump_tfc(ac_dump_fn dump, void *ctx, const char *name, const float *x, int T, int F, int C) {
    if (!dump) return;
    float *y = malloc(sizeof(float) * (size_t)T * F * C);
    if (!y) return;
    for (int t = 0; t < T; t++)
        for (int f = 0; f < F; f++)
            for (int c = 0; c < C; c++) y[((size_t)c * T + t) * F + f] = x[((size_t)t * F + f) * C + c];
    int64_t shape[3] = {C, T, F};
    dump(ctx, name, y, 3, shape);
    free(y);
}

// reference frame_embs_lens at batch size 1 (L = n samples, Tp = frames after the encoder)
static int frame_len(const ac_model *m, int64_t n, int Tp) {
    float len;
    if (m->cfg->encoder.frame_len_rule == AC_FRAME_LEN_CONETTE) {
        int64_t red = n / Tp;                       // input_.shape[-1] // frame_embs.shape[-1]
        len = (float)n / (float)red;                // input_lens.div(reduction_factor): float32
    } else {
        len = (float)n * (float)((double)Tp / (double)n);  // audio_lens * (T' / L), float32
    }
    int r = (int)nearbyintf(len);                   // torch round: half to even
    return r < 1 ? 1 : r > Tp ? Tp : r;            // never more frames than exist (the reference would fail)
}

ac_status ac_model_encode(const ac_model *m, const float *x, int64_t n, ac_dump_fn dump, void *dctx, float **memory,
                          int *n_frames, int *mem_len) {
    *memory = NULL;
    const ac_model_config *c = m->cfg;
    const ac_frontend *fe = &m->fe;
    if (n < ac_model_min_samples(m))
        return ac_fail(AC_ERR_AUDIO,
                       "too short for the encoder: %lld samples at %d Hz (%.3f s); the model needs at least %lld "
                       "(%.3f s)",
                       (long long)n, fe->sample_rate, (double)n / fe->sample_rate, (long long)ac_model_min_samples(m),
                       (double)ac_model_min_samples(m) / fe->sample_rate);
    const int64_t T = ac_frontend_n_frames(fe, n);
    const int F = fe->n_mels;
    ac_status st = AC_OK;
    float *a = malloc(sizeof(float) * (size_t)T * F), *b = NULL, *h = NULL, *tmp = NULL;
    if (!a) return ac_fail(AC_ERR_NOMEM, "encoder: out of memory for %lld frames", (long long)T);
    double tp = prof_mark(-1, 0);
    if ((st = ac_logmel_ref(fe, x, n, a, T))) goto done;
    int64_t shp[3] = {T, F, 0};
    if (dump) dump(dctx, "logmel", a, 2, shp);
    if ((st = ac_bn0_ref(fe, a, T))) goto done;
    if (dump) dump(dctx, "bn0", a, 2, shp);
    tp = prof_mark(P_FRONT, tp);

    const int *dims = c->encoder.dims;
    int t = (int)T, f = F;
    int t0 = ref_conv2d_patch_out(t, c->encoder.stem_kernel[0], c->encoder.stem_padding[0]);
    int f0 = ref_conv2d_patch_out(f, c->encoder.stem_kernel[1], c->encoder.stem_padding[1]);
    // cap: the largest activation over the stages (and the log-mel itself); hcap: the MLP's hidden scratch at the
    // stage that needs most
    size_t cap = (size_t)T * F, hcap = 0;
    for (int s = 0, ts = t0, fs_ = f0; s < 4; s++) {
        if (s > 0) ts = ref_conv2d_patch_out(ts, 2, 0), fs_ = ref_conv2d_patch_out(fs_, 2, 0);
        const int64_t P = (int64_t)ts * fs_;
        const size_t hs = ref_convnext_mlp_scratch(P, dims[s], ref_convnext_mlp_chunk_rows(P, dims[s]));
        if ((size_t)P * dims[s] > cap) cap = (size_t)P * dims[s];
        if (hs > hcap) hcap = hs;
    }
    float *a2 = realloc(a, sizeof(float) * cap);  // later holds frame_embs (T', C3) <= cap
    if (!a2) {
        st = ac_fail(AC_ERR_NOMEM, "encoder: out of memory");
        goto done;
    }
    a = a2;
    b = malloc(sizeof(float) * cap);
    tmp = malloc(sizeof(float) * cap);
    h = malloc(sizeof(float) * hcap);
    if (!b || !tmp || !h) {
        st = ac_fail(AC_ERR_NOMEM, "encoder: out of memory for %zu activations", cap);
        goto done;
    }
    ref_conv2d_patch(a, t, f, 1, m->stem_w, m->stem_b, dims[0], c->encoder.stem_kernel[0], c->encoder.stem_kernel[1],
                     c->encoder.stem_padding[0], c->encoder.stem_padding[1], b, &t, &f);
    ref_layernorm(b, (int64_t)t * f, dims[0], m->stem_ln_w, m->stem_ln_b, (float)c->encoder.ln_eps);
    tp = prof_mark(P_STEM, tp);
    dump_tfc(dump, dctx, "stem", b, t, f, dims[0]);
    for (int s = 0; s < 4; s++) {
        int C = dims[s];
        if (s > 0) {
            ref_layernorm(b, (int64_t)t * f, dims[s - 1], m->ds_ln_w[s], m->ds_ln_b[s], (float)c->encoder.ln_eps);
            ref_conv2d_patch(b, t, f, dims[s - 1], m->ds_w[s], m->ds_b[s], C, 2, 2, 0, 0, tmp, &t, &f);
            float *sw = b;
            b = tmp;
            tmp = sw;
            tp = prof_mark(P_DOWN, tp);
        }
        const int64_t P = (int64_t)t * f;
        for (int k = 0; k < c->encoder.depths[s]; k++) {
            const block_w *w = &m->blocks[s][k];
            ref_dwconv7(b, t, f, C, w->dw_w, w->dw_b, tmp);
            tp = prof_mark(P_DW, tp);
            ref_convnext_mlp(b, tmp, P, C, w->ln_w, w->ln_b, (float)c->encoder.ln_eps, w->pw1_w, w->pw1_b, w->pw2_w,
                             w->pw2_b, w->scale, ref_convnext_mlp_chunk_rows(P, C), h);
            tp = prof_mark(P_MLP, tp);
        }
        char name[32];
        snprintf(name, sizeof name, "stage%d", s);
        dump_tfc(dump, dctx, name, b, t, f, C);
    }
    const int C3 = dims[3], D = c->decoder.d_model, Tp = t;
    for (int tt = 0; tt < Tp; tt++)  // mean over frequency -> frame_embs (T', C3)
        for (int ch = 0; ch < C3; ch++) {
            double s = 0;
            for (int ff = 0; ff < f; ff++) s += b[((size_t)tt * f + ff) * C3 + ch];
            a[(size_t)tt * C3 + ch] = (float)(s / f);
        }
    int64_t fs[2] = {Tp, C3};
    if (dump) dump(dctx, "frame_embs", a, 2, fs);
    float *mem = malloc(sizeof(float) * (size_t)Tp * D);
    if (!mem) {
        st = ac_fail(AC_ERR_NOMEM, "encoder: out of memory");
        goto done;
    }
    ref_linear(a, Tp, C3, m->proj_w, m->proj_b, D, mem);
    ref_relu(mem, (int64_t)Tp * D);
    if (dump) {
        float *tr = malloc(sizeof(float) * (size_t)Tp * D);
        if (tr) {
            for (int tt = 0; tt < Tp; tt++)
                for (int d = 0; d < D; d++) tr[(size_t)d * Tp + tt] = mem[(size_t)tt * D + d];
            int64_t ps[2] = {D, Tp};
            dump(dctx, "projection", tr, 2, ps);
            free(tr);
        }
    }
    prof_mark(P_HEAD, tp);
    *memory = mem;
    *n_frames = Tp;
    *mem_len = frame_len(m, n, Tp);
done:
    free(a);
    free(b);
    free(h);
    free(tmp);
    return st;
}

// ---- decoder ----------------------------------------------------------------------------------------------------
struct ac_decoder {
    const ac_model *m;
    int n_clips, max_rows, max_steps, D, L, V, Fd;
    float **mem_k, **mem_v;  // [layer * n_clips + clip] -> (n_frames[clip], D)
    int *n_frames, *mem_len;
    float *self_k, *self_v, *gather;  // [layer][row][step][D]
    float *x, *qkv, *att, *o, *ff;
};

void ac_decoder_end(ac_decoder *d) {
    if (!d) return;
    if (d->mem_k)
        for (int i = 0; i < d->L * d->n_clips; i++) {
            free(d->mem_k[i]);
            free(d->mem_v[i]);
        }
    free(d->mem_k);
    free(d->mem_v);
    free(d->n_frames);
    free(d->mem_len);
    free(d->self_k);
    free(d->self_v);
    free(d->gather);
    free(d->x);
    free(d->qkv);
    free(d->att);
    free(d->o);
    free(d->ff);
    free(d);
}

ac_status ac_decoder_begin(const ac_model *m, int n_clips, float *const *memory, const int *n_frames,
                           const int *mem_len, int max_rows, int max_steps, ac_decoder **out) {
    *out = NULL;
    const ac_model_config *c = m->cfg;
    if (max_steps > c->decoder.max_positions)
        return ac_fail(AC_ERR_INVALID_ARG, "decoder: %d steps exceed the model's %d positions", max_steps,
                       c->decoder.max_positions);
    ac_decoder *d = calloc(1, sizeof *d);
    if (!d) return ac_fail(AC_ERR_NOMEM, "decoder: out of memory");
    d->m = m;
    d->n_clips = n_clips;
    d->max_rows = max_rows;
    d->max_steps = max_steps;
    const int D = d->D = c->decoder.d_model, L = d->L = c->decoder.num_layers;
    d->V = c->vocab_size;
    d->Fd = c->decoder.dim_feedforward;
    size_t cache = (size_t)L * max_rows * max_steps * D;
    d->mem_k = calloc((size_t)L * n_clips, sizeof(float *));
    d->mem_v = calloc((size_t)L * n_clips, sizeof(float *));
    d->n_frames = malloc(sizeof(int) * n_clips);
    d->mem_len = malloc(sizeof(int) * n_clips);
    d->self_k = malloc(sizeof(float) * cache);
    d->self_v = malloc(sizeof(float) * cache);
    d->gather = malloc(sizeof(float) * cache);
    d->x = malloc(sizeof(float) * (size_t)max_rows * D);
    d->qkv = malloc(sizeof(float) * (size_t)max_rows * 3 * D);
    d->att = malloc(sizeof(float) * (size_t)max_rows * D);
    d->o = malloc(sizeof(float) * (size_t)max_rows * D);
    d->ff = malloc(sizeof(float) * (size_t)max_rows * d->Fd);
    int ok = d->mem_k && d->mem_v && d->n_frames && d->mem_len && d->self_k && d->self_v && d->gather && d->x &&
             d->qkv && d->att && d->o && d->ff;
    for (int l = 0; ok && l < L; l++)
        for (int k = 0; ok && k < n_clips; k++) {
            // cross-attention keys/values of this clip's memory, once: rows D..2D-1 and 2D..3D-1 of in_proj
            const layer_w *w = &m->layers[l];
            float *mk = d->mem_k[l * n_clips + k] = malloc(sizeof(float) * (size_t)n_frames[k] * D);
            float *mv = d->mem_v[l * n_clips + k] = malloc(sizeof(float) * (size_t)n_frames[k] * D);
            if (!mk || !mv) {
                ok = 0;
                break;
            }
            ref_linear_rows(memory[k], n_frames[k], D, w->ca_in_w + (size_t)D * D, w->ca_in_b + D, D, mk);
            ref_linear_rows(memory[k], n_frames[k], D, w->ca_in_w + (size_t)2 * D * D, w->ca_in_b + 2 * D, D, mv);
        }
    if (!ok) {
        ac_decoder_end(d);
        return ac_fail(AC_ERR_NOMEM, "decoder: out of memory for %d rows x %d steps", max_rows, max_steps);
    }
    memcpy(d->n_frames, n_frames, sizeof(int) * n_clips);
    memcpy(d->mem_len, mem_len, sizeof(int) * n_clips);
    *out = d;
    return AC_OK;
}

static inline float *cache_at(const ac_decoder *d, float *base, int l, int row, int step) {
    return base + (((size_t)l * d->max_rows + row) * d->max_steps + step) * d->D;
}

static void add_ln(float *x, const float *y, int rows, int D, const float *w, const float *b, float eps) {
    for (int64_t i = 0; i < (int64_t)rows * D; i++) x[i] += y[i];
    ref_layernorm(x, rows, D, w, b, eps);
}

ac_status ac_decoder_step(ac_decoder *d, int step, int n_rows, const int *row_clip, const int *tokens, float *logits) {
    const ac_model *m = d->m;
    const ac_model_config *c = m->cfg;
    const int D = d->D, H = c->decoder.nhead;
    const float eps = (float)c->decoder.ln_eps, scale = (float)c->decoder.emb_scale;
    if (step >= d->max_steps || n_rows > d->max_rows)
        return ac_fail(AC_ERR_INTERNAL, "decoder: step %d / rows %d beyond the prepared %d / %d", step, n_rows,
                       d->max_steps, d->max_rows);
    for (int r = 0; r < n_rows; r++) {
        if (tokens[r] < 0 || tokens[r] >= d->V) return ac_fail(AC_ERR_INTERNAL, "decoder: token %d", tokens[r]);
        const float *e = m->emb + (size_t)tokens[r] * D, *p = m->pos + (size_t)step * D;
        for (int i = 0; i < D; i++) d->x[(size_t)r * D + i] = e[i] * scale + p[i];
    }
    for (int l = 0; l < d->L; l++) {
        const layer_w *w = &m->layers[l];
        ref_linear_rows(d->x, n_rows, D, w->sa_in_w, w->sa_in_b, 3 * D, d->qkv);
        for (int r = 0; r < n_rows; r++) {
            memcpy(cache_at(d, d->self_k, l, r, step), d->qkv + (size_t)r * 3 * D + D, sizeof(float) * D);
            memcpy(cache_at(d, d->self_v, l, r, step), d->qkv + (size_t)r * 3 * D + 2 * D, sizeof(float) * D);
        }
#pragma omp parallel for schedule(static) if (n_rows > 4)
        for (int r = 0; r < n_rows; r++)
            ref_attend(d->qkv + (size_t)r * 3 * D, cache_at(d, d->self_k, l, r, 0), cache_at(d, d->self_v, l, r, 0),
                       step + 1, step + 1, D, H, d->att + (size_t)r * D);
        ref_linear_rows(d->att, n_rows, D, w->sa_out_w, w->sa_out_b, D, d->o);
        add_ln(d->x, d->o, n_rows, D, w->n1_w, w->n1_b, eps);
        ref_linear_rows(d->x, n_rows, D, w->ca_in_w, w->ca_in_b, D, d->qkv);  // queries only
#pragma omp parallel for schedule(static) if (n_rows > 4)
        for (int r = 0; r < n_rows; r++) {
            int k = row_clip[r];
            ref_attend(d->qkv + (size_t)r * D, d->mem_k[l * d->n_clips + k], d->mem_v[l * d->n_clips + k],
                       d->n_frames[k], d->mem_len[k], D, H, d->att + (size_t)r * D);
        }
        ref_linear_rows(d->att, n_rows, D, w->ca_out_w, w->ca_out_b, D, d->o);
        add_ln(d->x, d->o, n_rows, D, w->n2_w, w->n2_b, eps);
        ref_linear_rows(d->x, n_rows, D, w->l1_w, w->l1_b, d->Fd, d->ff);
        ref_gelu_erf(d->ff, (int64_t)n_rows * d->Fd);
        ref_linear_rows(d->ff, n_rows, d->Fd, w->l2_w, w->l2_b, D, d->o);
        add_ln(d->x, d->o, n_rows, D, w->n3_w, w->n3_b, eps);
    }
    ref_linear_rows(d->x, n_rows, D, m->cls_w, m->cls_b, d->V, logits);
    return AC_OK;
}

void ac_decoder_reorder(ac_decoder *d, int step, int n_new, const int *src) {
    const size_t len = (size_t)(step + 1) * d->D;
    float *bases[2] = {d->self_k, d->self_v};
    for (int kv = 0; kv < 2; kv++) {
        for (int l = 0; l < d->L; l++)
            for (int r = 0; r < n_new; r++)
                memcpy(cache_at(d, d->gather, l, r, 0), cache_at(d, bases[kv], l, src[r], 0), sizeof(float) * len);
        float *t = bases[kv];
        bases[kv] = d->gather;
        d->gather = t;
    }
    d->self_k = bases[0];
    d->self_v = bases[1];
}

ac_status ac_model_forcing(const ac_model *m, const float *memory, int n_frames, int mem_len, const int *tokens,
                           int S, float *logits) {
    ac_decoder *d;
    float *mems[1] = {(float *)memory};
    ac_status st = ac_decoder_begin(m, 1, mems, &n_frames, &mem_len, 1, S, &d);
    if (st) return st;
    int clip = 0;
    for (int s = 0; s < S && !st; s++)
        st = ac_decoder_step(d, s, 1, &clip, tokens + s, logits + (size_t)s * m->cfg->vocab_size);
    ac_decoder_end(d);
    return st;
}

// ---- captioning ---------------------------------------------------------------------------------------------------
static ac_status src_step(void *ctx, int step, int n_rows, const int *row_clip, const int *tokens, float *logits) {
    return ac_decoder_step(ctx, step, n_rows, row_clip, tokens, logits);
}

static void src_reorder(void *ctx, int step, int n_new, const int *src) { ac_decoder_reorder(ctx, step, n_new, src); }

void ac_caption_set_beams(const ac_model_config *cfg, const ac_caption *src, ac_caption *dst) {
    dst->n_beams = src->n_beams;
    dst->best = src->best;
    memcpy(dst->beams, src->beams, sizeof(ac_hyp) * src->n_beams);
    for (int b = 0; b < dst->n_beams; b++)
        ac_detokenize(cfg, dst->beams[b].tokens, dst->beams[b].n_tokens, dst->beams[b].text, sizeof dst->beams[b].text);
}

ac_status ac_caption_clips(const ac_model *m, int n, const float *const *x, const int64_t *n_samples,
                           const ac_decode_params *p, ac_caption *out) {
    const ac_model_config *c = m->cfg;
    ac_beam_params bp = {
        .beam_size = p && p->beam_size > 0 ? p->beam_size : c->decoding.beam_size,
        .min_pred_size = p && p->min_pred_size >= 0 ? p->min_pred_size : c->decoding.min_pred_size,
        .max_pred_size = p && p->max_pred_size > 0 ? p->max_pred_size : c->decoding.max_pred_size,
        .eos_id = c->decoding.eos_id,
        .vocab_size = c->vocab_size,
        .forbid_rep_mask = m->forbid,
    };
    if (bp.beam_size > AC_MAX_BEAM || bp.max_pred_size > AC_MAX_PRED - 1 ||
        bp.max_pred_size + 1 > c->decoder.max_positions)
        return ac_fail(AC_ERR_INVALID_ARG, "beam size %d (max %d) or max length %d (max %d) out of range", bp.beam_size,
                       AC_MAX_BEAM, bp.max_pred_size, AC_MAX_PRED - 1);
    int task = p && p->task >= 0 ? p->task : c->decoding.default_task;
    if (c->decoding.n_tasks > 0 && (task < 0 || task >= c->decoding.n_tasks))
        return ac_fail(AC_ERR_INVALID_ARG, "task %d: the model has %d tasks", task, c->decoding.n_tasks);
    const int bos = c->decoding.n_tasks > 0 ? (int)c->decoding.task_token_ids[task] : c->decoding.bos_id;

    float **mem = calloc((size_t)n, sizeof(float *));
    int *nf = malloc(sizeof(int) * n), *ml = malloc(sizeof(int) * n), *idx = malloc(sizeof(int) * n);
    int *bos_ids = malloc(sizeof(int) * n);
    ac_caption *sub = malloc(sizeof(ac_caption) * n);
    ac_status st = AC_OK;
    if (!mem || !nf || !ml || !idx || !bos_ids || !sub) {
        st = ac_fail(AC_ERR_NOMEM, "caption: out of memory for %d clips", n);
        goto done;
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        ac_clear_error();
        ac_status s = ac_model_encode(m, x[i], n_samples[i], NULL, NULL, &mem[k], &nf[k], &ml[k]);
        if (s == AC_ERR_NOMEM) {
            st = s;
            goto done;
        }
        if (s) {
            out[i].status = s;
            snprintf(out[i].error, sizeof out[i].error, "%s", ac_last_error());
            continue;
        }
        out[i].n_frames = nf[k];
        out[i].mem_len = ml[k];
        bos_ids[k] = bos;
        idx[k++] = i;
    }
    if (k > 0) {
        ac_decoder *d;
        st = ac_decoder_begin(m, k, mem, nf, ml, k * bp.beam_size, bp.max_pred_size + 1, &d);
        if (st) goto done;
        ac_logits_source src = {d, src_step, src_reorder};
        double td = prof_mark(-1, 0);
        st = ac_beam_search(&bp, k, bos_ids, &src, sub);
        prof_mark(P_DEC, td);
        ac_decoder_end(d);
        if (st) goto done;
        for (int j = 0; j < k; j++) ac_caption_set_beams(c, &sub[j], &out[idx[j]]);
    }
done:
    if (mem)
        for (int i = 0; i < n; i++) free(mem[i]);
    free(mem);
    free(nf);
    free(ml);
    free(idx);
    free(bos_ids);
    free(sub);
    return st;
}
