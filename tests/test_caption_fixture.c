// Captioning on the CPU against the upstream CoNeTTE code (tools/make_fixtures.py dumps, batch size 1, float32):
// every encoder stage and the teacher-forced decoder logits within tests/tolerances.h, then for every recorded
// (task, beam size) the same token ids for every beam, the same caption strings and scores within
// TOL_SCORE_ABS. Finally batch invariance: all clips captioned together give bit-identical results to each clip
// captioned alone.
// usage: test_caption_fixture FIXTURE_DIR MODEL.safetensors AUDIO_DIR   (missing FIXTURE_DIR: skipped)
#include "model.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int checks = 0;
static const char *g_fix;

typedef struct {
    cJSON *stages;
    const char *clip;
} dump_ctx;

static cJSON *g_ref_err;  // this clip's reference_f32_rel_error (see tolerances.h)

static double stage_budget(const char *stage) {
    double b = (!strcmp(stage, "logmel") || !strcmp(stage, "bn0")) ? TOL_FRONTEND_STAGE_REL : TOL_STAGE_REL;
    cJSON *e = cJSON_GetObjectItem(g_ref_err, stage);
    return e && TOL_REF_FACTOR * e->valuedouble > b ? TOL_REF_FACTOR * e->valuedouble : b;
}

static void compare(const char *clip, const char *stage, const float *got, int ndim, const int64_t *shape,
                    const char *ref_file) {
    char path[4096];
    snprintf(path, sizeof path, "%s/dumps/%s", g_fix, ref_file);
    ac_npy ref;
    if (ac_npy_read(path, &ref) != AC_OK) {
        checks++;
        CHECK(0, "%s", ac_last_error());
        return;
    }
    int same = ref.ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = ref.shape[i] == shape[i];
    checks++;
    CHECK(same, "%s %s: shape differs from the reference", clip, stage);
    if (same) {
        double mx = 0, err = 0;
        for (int64_t i = 0; i < ref.size; i++) {
            mx = fmax(mx, fabs(ref.data[i]));
            err = fmax(err, isnan(got[i]) ? INFINITY : fabs(got[i] - ref.data[i]));
        }
        char label[160];
        snprintf(label, sizeof label, "%s %s (max|ref| %.3g)", clip, stage, mx);
        checks++;
        CHECK(report(label, err / (mx > 0 ? mx : 1), stage_budget(stage), 0), "%s %s", clip, stage);
    }
    ac_npy_free(&ref);
}

static void on_dump(void *ctx, const char *stage, const float *data, int ndim, const int64_t *shape) {
    dump_ctx *d = ctx;
    cJSON *s = cJSON_GetObjectItem(d->stages, stage);
    if (s) compare(d->clip, stage, data, ndim, shape, cJSON_GetObjectItem(s, "file")->valuestring);
}

static int task_index(const ac_model_config *c, const char *name) {
    for (int i = 0; i < c->decoding.n_tasks; i++)
        if (!strcmp(c->decoding.task_names[i], name)) return i;
    return -1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s FIXTURE_DIR MODEL AUDIO_DIR\n", argv[0]);
        return 2;
    }
    g_fix = argv[1];
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", g_fix);
    if (access(path, R_OK) != 0) {
        printf("test_caption_fixture: no fixture at %s: skipped\n", g_fix);
        return AC_SKIP;
    }
    cJSON *man = read_json_file(path);
    ac_model *m = NULL;
    CHECK_OK(ac_model_load(argv[2], &m));
    if (!m || !man) return test_finish("test_caption_fixture", 1);
    const ac_model_config *cfg = ac_model_config_of(m);

    int n_clips = cJSON_GetArraySize(cJSON_GetObjectItem(man, "clips"));
    float **xs = calloc((size_t)n_clips, sizeof(float *));
    int64_t *ns = calloc((size_t)n_clips, sizeof(int64_t));
    int ci = 0;
    cJSON *clip;
    cJSON_ArrayForEach(clip, cJSON_GetObjectItem(man, "clips")) {
        const char *file = cJSON_GetObjectItem(clip, "file")->valuestring;
        snprintf(path, sizeof path, "%s/%s", g_fix, file);
        if (access(path, R_OK) != 0) snprintf(path, sizeof path, "%s/%s", argv[3], file);
        ac_audio a;
        CHECK_OK(ac_audio_load(path, &a, NULL));
        CHECK_OK(ac_audio_to_model_rate(&a, cfg->frontend.sample_rate, &xs[ci], &ns[ci]));
        ac_audio_free(&a);
        printf("%s (%.2f s):\n", file, (double)ns[ci] / cfg->frontend.sample_rate);

        // Encoder stages, from the reference's own 32 kHz samples: the resampler is tested on its own (>= 90 dB),
        // and in bins an input leaves empty (an 8 kHz clip above 4 kHz) its last-bit differences would dominate.
        dump_ctx dc = {cJSON_GetObjectItem(clip, "stages"), file};
        g_ref_err = cJSON_GetObjectItem(clip, "reference_f32_rel_error");
        cJSON *a32 = cJSON_GetObjectItem(dc.stages, "audio_32k");
        char stem[512];
        snprintf(stem, sizeof stem, "%s", file);
        for (char *q = stem; *q; q++)
            if (*q == '.') *q = '_';
        if (a32) snprintf(path, sizeof path, "%s/dumps/%s", g_fix, cJSON_GetObjectItem(a32, "file")->valuestring);
        else snprintf(path, sizeof path, "%s/../golden/%s.audio_32k.npy", argv[3], stem);
        ac_npy xr;
        const float *xenc = xs[ci];
        int64_t nenc = ns[ci];
        float *xref = NULL;
        if (ac_npy_read(path, &xr) == AC_OK) {
            xref = malloc(sizeof(float) * xr.size);
            for (int64_t i = 0; i < xr.size; i++) xref[i] = (float)xr.data[i];
            xenc = xref;
            nenc = xr.size;
            ac_npy_free(&xr);
        } else {
            printf("  (no reference 32 kHz samples at %s: encoding our own)\n", path);
        }
        float *mem = NULL;
        int nf = 0, ml = 0;
        CHECK_OK(ac_model_encode(m, xenc, nenc, on_dump, &dc, &mem, &nf, &ml));
        free(xref);
        ac_npy lens;
        snprintf(path, sizeof path, "%s/dumps/%s", g_fix,
                 cJSON_GetObjectItem(cJSON_GetObjectItem(dc.stages, "frame_embs_lens"), "file")->valuestring);
        if (ac_npy_read(path, &lens) == AC_OK) {
            checks++;
            CHECK(lens.size == 1 && (int)lens.data[0] == ml, "%s: frame_embs_lens %d, reference %g", file, ml,
                  lens.data[0]);
            ac_npy_free(&lens);
        }
        // teacher forcing
        cJSON *ft = cJSON_GetObjectItem(dc.stages, "forcing_tokens");
        ac_npy toks;
        snprintf(path, sizeof path, "%s/dumps/%s", g_fix, cJSON_GetObjectItem(ft, "file")->valuestring);
        if (mem && ac_npy_read(path, &toks) == AC_OK) {
            int S = (int)toks.size - 1, V = cfg->vocab_size;
            int *ti = malloc(sizeof(int) * S);
            for (int i = 0; i < S; i++) ti[i] = (int)toks.data[i];
            float *lg = malloc(sizeof(float) * (size_t)S * V), *lgt = malloc(sizeof(float) * (size_t)S * V);
            CHECK_OK(ac_model_forcing(m, mem, nf, ml, ti, S, lg));
            for (int s = 0; s < S; s++)
                for (int v = 0; v < V; v++) lgt[(size_t)v * S + s] = lg[(size_t)s * V + v];  // reference: (V, S)
            int64_t shp[2] = {V, S};
            compare(file, "forcing_logits", lgt, 2, shp,
                    cJSON_GetObjectItem(cJSON_GetObjectItem(dc.stages, "forcing_logits"), "file")->valuestring);
            free(ti);
            free(lg);
            free(lgt);
            ac_npy_free(&toks);
        }
        free(mem);

        // beam search, one clip at a time
        cJSON *bs;
        cJSON_ArrayForEach(bs, cJSON_GetObjectItem(clip, "beam_search")) {
            const char *task = cJSON_GetObjectItem(bs, "task")->valuestring;
            // "<bos>" entries are decoded without task embedding: they are the reference for models without
            // tasks (the DCASE-2024 layout), whose tokenizer.json decoding is recorded as caption_hf
            if ((cfg->decoding.n_tasks > 0) == !strcmp(task, "<bos>")) continue;
            const char *cap_key = !strcmp(cfg->tokenizer.kind, "hf_wordlevel") ? "caption_hf" : "caption";
            ac_decode_params p = {.beam_size = cJSON_GetObjectItem(bs, "beam_size")->valueint,
                                  .min_pred_size = -1,
                                  .max_pred_size = 0,
                                  .task = cfg->decoding.n_tasks ? task_index(cfg, task) : -1};
            ac_caption cap;
            const float *xp = xs[ci];
            CHECK_OK(ac_caption_clips(m, 1, &xp, &ns[ci], &p, &cap));
            cJSON *beams = cJSON_GetObjectItem(bs, "beams");
            int nb = cJSON_GetArraySize(beams), same_tokens = cap.n_beams == nb, worst_score = 0;
            double max_dscore = 0;
            for (int b = 0; same_tokens && b < nb; b++) {
                cJSON *rb = cJSON_GetArrayItem(beams, b), *rt = cJSON_GetObjectItem(rb, "tokens");
                same_tokens = cJSON_GetArraySize(rt) == cap.beams[b].n_tokens;
                for (int t = 0; same_tokens && t < cap.beams[b].n_tokens; t++)
                    same_tokens = cJSON_GetArrayItem(rt, t)->valueint == cap.beams[b].tokens[t];
                double ds = fabs(cJSON_GetObjectItem(rb, "score")->valuedouble - cap.beams[b].score);
                if (ds > max_dscore) max_dscore = ds, worst_score = b;
                checks++;
                CHECK(same_tokens && !strcmp(cJSON_GetObjectItem(rb, cap_key)->valuestring, cap.beams[b].text),
                      "%s %s beam %d: slot %d: '%s' vs reference '%s'", file, task, p.beam_size, b, cap.beams[b].text,
                      cJSON_GetObjectItem(rb, cap_key)->valuestring);
            }
            const char *want = cJSON_GetObjectItem(bs, cap_key)->valuestring;
            checks += 2;
            CHECK(cap.n_beams == nb && !strcmp(cap.beams[cap.best].text, want), "%s %s beam %d: best '%s' vs '%s'",
                  file, task, p.beam_size, cap.n_beams ? cap.beams[cap.best].text : "", want);
            CHECK(max_dscore <= TOL_SCORE_ABS, "%s: score off by %.3g (slot %d)", file, max_dscore, worst_score);
            printf("  %-10s beam %d: %s tokens on all %d beams, score |d| %.2g: \"%s\"\n", task, p.beam_size,
                   same_tokens ? "same" : "DIFFERENT", nb, max_dscore, cap.n_beams ? cap.beams[cap.best].text : "");
        }
        ci++;
    }

    // batch invariance: every clip together (mixed lengths) vs each alone, for beam 3 default task
    ac_decode_params p = {.beam_size = 3, .min_pred_size = -1, .max_pred_size = 0, .task = -1};
    ac_caption *together = calloc((size_t)n_clips, sizeof(ac_caption)), alone;
    CHECK_OK(ac_caption_clips(m, n_clips, (const float *const *)xs, ns, &p, together));
    int identical = 0;
    for (int i = 0; i < n_clips; i++) {
        const float *xp = xs[i];
        CHECK_OK(ac_caption_clips(m, 1, &xp, &ns[i], &p, &alone));
        int same = alone.n_beams == together[i].n_beams && alone.best == together[i].best;
        for (int b = 0; same && b < alone.n_beams; b++)
            same = alone.beams[b].n_tokens == together[i].beams[b].n_tokens &&
                   !memcmp(alone.beams[b].tokens, together[i].beams[b].tokens, sizeof(int) * alone.beams[b].n_tokens) &&
                   !memcmp(&alone.beams[b].score, &together[i].beams[b].score, sizeof(float));
        identical += same;
        checks++;
        CHECK(same, "clip %d: captioned in a batch differs from alone", i);
    }
    printf("batch of %d clips vs alone: %d/%d bit-identical (tokens and scores of every beam)\n", n_clips, identical,
           n_clips);
    free(together);
    for (int i = 0; i < n_clips; i++) free(xs[i]);
    free(xs);
    free(ns);
    cJSON_Delete(man);
    ac_model_free(m);
    return test_finish("test_caption_fixture", checks);
}
