// Model-file loader (host/model_file.c) against weights/FORMAT.md, format_version 1. Every file here is written by
// the small safetensors writer below (header JSON from cJSON, padded with spaces to an 8-aligned data section as
// the safetensors package does), around a tiny but complete cnext-trans model whose tensor table is transcribed
// from FORMAT.md independently of the loader's. Groups:
//   (a) a valid file opens from disk and from memory; hparams, metadata and every tensor byte read back as
//       written; F16/BF16 widen exactly (all 65536 patterns of each, subnormals, infinities, NaN, -0); info output;
//   (b) each container/metadata/tensor-entry corruption FORMAT.md lists gives AC_ERR_FORMAT (AC_ERR_INVALID_ARG
//       only for API misuse, AC_ERR_IO for unreadable paths) and a message naming the file and the key/tensor;
//   (c) the cnext-trans table: missing, unknown, misshaped and wrongly typed tensors are reported together;
//   (d) robustness: truncation at every header length and across the data, every truncated header JSON, and
//       2000 random byte/bit corruptions of the length and header; each gives an error or a valid object. The
//       ASan/UBSan build of this test is the real check: all inputs live in exact-size heap buffers.
#include "testutil.h"

#include "model_file.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int checks = 0;
#define T(cond, ...)                                                                                                   \
    do {                                                                                                               \
        checks++;                                                                                                      \
        CHECK(cond, __VA_ARGS__);                                                                                      \
    } while (0)

static const char *NAME = "tiny.safetensors";  // the name memory-opened files go by in messages

// ---------------------------------------------------------------------------------------------------------
// the tiny model's constants (FORMAT.md symbols)
// ---------------------------------------------------------------------------------------------------------
enum { C0 = 4, C1 = 8, C2 = 8, C3 = 8, D = 8, NHEAD = 2, L = 2, FF = 16, V = 13, NFFT = 16, NMELS = 8, MAXPOS = 32 };
static const int DIMS[4] = {C0, C1, C2, C3};
static const char *const ITOS[V] = {"<pad>", "<bos>",   "<eos>",        "<unk>",           "a", "dog", "is", "barking",
                                    "rain",  "falling", "<bos_clotho>", "<bos_audiocaps>", "."};
static const char *const POST[] = {"clean_special_tokens",
                                   "clean_spaces_before_punctuation",
                                   "strip",
                                   "clean_double_spaces",
                                   "clean_hyphen_spaces",
                                   "lowercase"};

static const char *HPARAMS =
    "{\"encoder\": {\"in_chans\": 1, \"depths\": [1, 1, 1, 1], \"dims\": [4, 8, 8, 8], \"stem_kernel\": [4, 4],"
    " \"stem_stride\": [4, 4], \"stem_padding\": [4, 0], \"ln_eps\": 1e-6, \"frame_len_rule\": \"conette\"},"
    " \"projection\": {\"in_features\": 8, \"out_features\": 8, \"activation\": \"relu\"},"
    " \"decoder\": {\"d_model\": 8, \"nhead\": 2, \"num_layers\": 2, \"dim_feedforward\": 16, \"activation\": \"gelu\","
    " \"norm_first\": false, \"ln_eps\": 1e-5, \"emb_scale\": 2.8284271247461903, \"max_positions\": 32},"
    " \"vocab_size\": 13}";
static const char *FRONTEND =
    "{\"sample_rate\": 32000, \"n_fft\": 16, \"win_length\": 16, \"hop\": 8, \"window\": \"hann_periodic\","
    " \"center\": true, \"pad_mode\": \"reflect\", \"n_mels\": 8, \"fmin\": 50, \"fmax\": 14000, \"mel_scale\": "
    "\"slaney\","
    " \"amin\": 1e-10, \"ref\": 1.0, \"top_db\": null, \"bn_eps\": 1e-5, \"resampler\": \"torchaudio_sinc_hann\","
    " \"lowpass_filter_width\": 6, \"rolloff\": 0.99, \"channel_mix\": \"mean_after_resample\"}";
static const char *DECODING =
    "{\"beam_size\": 3, \"min_pred_size\": 3, \"max_pred_size\": 20, \"forbid_rep_mode\": \"content_words\","
    " \"pad_id\": 0, \"bos_id\": 1, \"eos_id\": 2, \"unk_id\": 3, \"task_names\": [\"clotho\", \"audiocaps\"],"
    " \"default_task\": \"clotho\"}";
static const char *SOURCES =
    "[{\"name\": \"pytorch_model.bin\", \"sha256\": "
    "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\", \"bytes\": 123456}]";
static const char *CONVERTER = "{\"tool\": \"tools/convert.py\", \"version\": \"0.1.0\", \"name_map\": "
                               "{\"preprocessor.encoder.stages.0.0.scale_layer\":"
                               " \"preprocessor.encoder.stages.0.0.gamma\"}}";

// ---------------------------------------------------------------------------------------------------------
// a model under construction: tensor specs + structured metadata, serialised by make_file()
// ---------------------------------------------------------------------------------------------------------
typedef struct {
    char name[128];
    char dtype[8];
    int ndim;
    int64_t shape[AC_MAX_DIMS];
    unsigned char *data;
    size_t nbytes;
} tspec;

typedef struct {
    tspec *t;
    int n, cap;
    cJSON *hparams, *frontend, *decoding, *tokenizer, *sources, *converter;
    cJSON *over;  // __metadata__ overrides applied last: a null value deletes the key
} model;

static uint64_t rng_state;
static uint64_t rnd(void) {  // xorshift64*
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static size_t dtype_bytes(const char *dt) {
    return !strcmp(dt, "I64") ? 8 : !strcmp(dt, "F32") ? 4 : !strcmp(dt, "F16") || !strcmp(dt, "BF16") ? 2 : 1;
}

// Deterministic contents from the tensor's name (so regenerating a tensor gives the same bytes): floats in
// [-1, 1) for F32, finite random patterns for F16/BF16 (subnormals included), 0/1 for BOOL, small ints for I64.
static void fill(tspec *t) {
    uint64_t h = 1469598103934665603ull;
    for (const char *p = t->name; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    rng_state = h | 1;
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    size_t es = dtype_bytes(t->dtype);
    t->nbytes = (size_t)n * es;
    free(t->data);
    t->data = malloc(t->nbytes ? t->nbytes : 1);
    for (int64_t i = 0; i < n; i++) {
        unsigned char *p = t->data + (size_t)i * es;
        if (!strcmp(t->dtype, "F32")) {
            float f = (float)((double)(rnd() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
            memcpy(p, &f, 4);
        } else if (!strcmp(t->dtype, "F16")) {
            uint16_t v;
            do v = (uint16_t)rnd();
            while (((v >> 10) & 0x1f) == 0x1f);
            memcpy(p, &v, 2);
        } else if (!strcmp(t->dtype, "BF16")) {
            uint16_t v;
            do v = (uint16_t)rnd();
            while (((v >> 7) & 0xff) == 0xff);
            memcpy(p, &v, 2);
        } else if (!strcmp(t->dtype, "I64")) {
            int64_t v = (int64_t)(rnd() % 7);
            memcpy(p, &v, 8);
        } else {
            *p = (unsigned char)(rnd() >> 63);
        }
    }
}

static tspec *find_t(model *m, const char *name) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->t[i].name, name)) return &m->t[i];
    return NULL;
}

static tspec *add_t(model *m, const char *dtype, int ndim, const int64_t *shape, const char *fmt, ...) {
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 128;
        m->t = realloc(m->t, sizeof *m->t * (size_t)m->cap);
    }
    tspec *t = &m->t[m->n++];
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    fill(t);
    return t;
}

#define S(...) ((const int64_t[]){__VA_ARGS__})
#define NDIM(...) (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define SHP(...) NDIM(__VA_ARGS__), S(__VA_ARGS__)  // ndim, shape
#define F32(...) add_t(m, "F32", __VA_ARGS__)
#define E "preprocessor.encoder"

// Changes a tensor's dtype and/or shape (regenerating its bytes).
static void retype(model *m, const char *name, const char *dtype, int ndim, const int64_t *shape) {
    tspec *t = find_t(m, name);
    if (!t) {
        fprintf(stderr, "test bug: no tensor %s\n", name);
        exit(1);
    }
    if (dtype) snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
    if (shape) {
        t->ndim = ndim;
        for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    }
    fill(t);
}

static void drop_t(model *m, const char *name) {
    tspec *t = find_t(m, name);
    if (!t) return;
    free(t->data);
    *t = m->t[--m->n];
}

static void rename_t(model *m, const char *from, const char *to) {
    tspec *t = find_t(m, from);
    if (t) snprintf(t->name, sizeof t->name, "%s", to);
}

typedef struct {
    int n_tasks;   // 2 (clotho, audiocaps) or 0
    int optional;  // include the optional tensors
    int half;      // store emb_layer as F16 and the classifier weight as BF16
} model_opts;

static const model_opts DEFAULT = {2, 1, 1};

// The FORMAT.md "Tensors (architecture cnext-trans)" table for the tiny hparams, transcribed row by row.
static void make_model(model *m, model_opts o) {
    memset(m, 0, sizeof *m);
    m->hparams = cJSON_Parse(HPARAMS);
    m->frontend = cJSON_Parse(FRONTEND);
    m->decoding = cJSON_Parse(DECODING);
    m->sources = cJSON_Parse(SOURCES);
    m->converter = cJSON_Parse(CONVERTER);
    m->tokenizer = cJSON_CreateObject();
    cJSON_AddStringToObject(m->tokenizer, "kind", "conette_aac");
    cJSON_AddItemToObject(m->tokenizer, "itos", cJSON_CreateStringArray(ITOS, V));
    cJSON_AddItemToObject(m->tokenizer, "post_decoding", cJSON_CreateStringArray(POST, 6));
    m->over = cJSON_CreateObject();
    if (!m->hparams || !m->frontend || !m->decoding || !m->sources || !m->converter) {
        fprintf(stderr, "test bug: metadata literal is not JSON\n");
        exit(1);
    }
    if (o.n_tasks == 0) {
        cJSON_ReplaceItemInObjectCaseSensitive(m->decoding, "task_names", cJSON_CreateArray());
        cJSON_ReplaceItemInObjectCaseSensitive(m->decoding, "default_task", cJSON_CreateNull());
    }
    const int nb = NFFT / 2 + 1;
    F32(SHP(nb, 1, NFFT), E ".spectrogram_extractor.stft.conv_real.weight");
    F32(SHP(nb, 1, NFFT), E ".spectrogram_extractor.stft.conv_imag.weight");
    F32(SHP(nb, NMELS), E ".logmel_extractor.melW");
    F32(SHP(NMELS), E ".bn0.weight");
    F32(SHP(NMELS), E ".bn0.bias");
    F32(SHP(NMELS), E ".bn0.running_mean");
    F32(SHP(NMELS), E ".bn0.running_var");
    if (o.optional) add_t(m, "I64", 0, NULL, E ".bn0.num_batches_tracked");
    F32(SHP(C0, 1, 4, 4), E ".downsample_layers.0.0.weight");
    F32(SHP(C0), E ".downsample_layers.0.0.bias");
    F32(SHP(C0), E ".downsample_layers.0.1.weight");
    F32(SHP(C0), E ".downsample_layers.0.1.bias");
    for (int i = 1; i < 4; i++) {
        F32(SHP(DIMS[i - 1]), E ".downsample_layers.%d.0.weight", i);
        F32(SHP(DIMS[i - 1]), E ".downsample_layers.%d.0.bias", i);
        F32(SHP(DIMS[i], DIMS[i - 1], 2, 2), E ".downsample_layers.%d.1.weight", i);
        F32(SHP(DIMS[i]), E ".downsample_layers.%d.1.bias", i);
    }
    for (int s = 0; s < 4; s++) {
        int64_t c = DIMS[s];
        F32(SHP(c, 1, 7, 7), E ".stages.%d.0.dwconv.weight", s);
        F32(SHP(c), E ".stages.%d.0.dwconv.bias", s);
        F32(SHP(c), E ".stages.%d.0.norm.weight", s);
        F32(SHP(c), E ".stages.%d.0.norm.bias", s);
        F32(SHP(4 * c, c), E ".stages.%d.0.pwconv1.weight", s);
        F32(SHP(4 * c), E ".stages.%d.0.pwconv1.bias", s);
        F32(SHP(c, 4 * c), E ".stages.%d.0.pwconv2.weight", s);
        F32(SHP(c), E ".stages.%d.0.pwconv2.bias", s);
        F32(SHP(c), E ".stages.%d.0.scale_layer", s);
    }
    if (o.optional) {
        F32(SHP(C3), E ".norm.weight");
        F32(SHP(C3), E ".norm.bias");
        F32(SHP(527, C3), E ".head_audioset.weight");
        F32(SHP(527), E ".head_audioset.bias");
    }
    F32(SHP(D, C3), "model.projection.2.weight");
    F32(SHP(D), "model.projection.2.bias");
    add_t(m, o.half ? "F16" : "F32", SHP(V, D), "model.decoder.emb_layer.weight");
    F32(SHP(MAXPOS, 1, D), "model.decoder.pos_encoding.pos_embedding");
    for (int l = 0; l < L; l++) {
        const char *att[2] = {"self_attn", "multihead_attn"};
        for (int a = 0; a < 2; a++) {
            F32(SHP(3 * D, D), "model.decoder.layers.%d.%s.in_proj_weight", l, att[a]);
            F32(SHP(3 * D), "model.decoder.layers.%d.%s.in_proj_bias", l, att[a]);
            F32(SHP(D, D), "model.decoder.layers.%d.%s.out_proj.weight", l, att[a]);
            F32(SHP(D), "model.decoder.layers.%d.%s.out_proj.bias", l, att[a]);
        }
        F32(SHP(FF, D), "model.decoder.layers.%d.linear1.weight", l);
        F32(SHP(FF), "model.decoder.layers.%d.linear1.bias", l);
        F32(SHP(D, FF), "model.decoder.layers.%d.linear2.weight", l);
        F32(SHP(D), "model.decoder.layers.%d.linear2.bias", l);
        for (int k = 1; k <= 3; k++) {
            F32(SHP(D), "model.decoder.layers.%d.norm%d.weight", l, k);
            F32(SHP(D), "model.decoder.layers.%d.norm%d.bias", l, k);
        }
    }
    add_t(m, o.half ? "BF16" : "F32", SHP(V, D), "model.decoder.classifier.weight");
    F32(SHP(V), "model.decoder.classifier.bias");
    add_t(m, "BOOL", 1, S(V), "model.forbid_rep_mask");
    if (o.n_tasks) {
        tspec *t = add_t(m, "I64", 1, S(2), "model.task_id_to_token_id");
        int64_t ids[2] = {10, 11};
        memcpy(t->data, ids, sizeof ids);
    }
    if (o.half) {  // special values at the start of the F16 and BF16 tensors
        const uint16_t h[] = {0x0001, 0x03ff, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x3c00, 0x7bff, 0x8001};
        const uint16_t b[] = {0x0001, 0x007f, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0x3f80, 0x7f7f, 0x8001};
        memcpy(find_t(m, "model.decoder.emb_layer.weight")->data, h, sizeof h);
        memcpy(find_t(m, "model.decoder.classifier.weight")->data, b, sizeof b);
    }
}

static void free_model(model *m) {
    for (int i = 0; i < m->n; i++) free(m->t[i].data);
    free(m->t);
    cJSON_Delete(m->hparams);
    cJSON_Delete(m->frontend);
    cJSON_Delete(m->decoding);
    cJSON_Delete(m->tokenizer);
    cJSON_Delete(m->sources);
    cJSON_Delete(m->converter);
    cJSON_Delete(m->over);
    memset(m, 0, sizeof *m);
}

// __metadata__ override: value NULL deletes the key; otherwise the cJSON value (owned by the model) replaces it.
static void set_meta(model *m, const char *key, cJSON *value) {
    cJSON_DeleteItemFromObjectCaseSensitive(m->over, key);
    cJSON_AddItemToObject(m->over, key, value ? value : cJSON_CreateNull());
}

static void set_meta_raw(model *m, const char *key, const char *raw) { set_meta(m, key, cJSON_CreateString(raw)); }

// A file in parts: the header as a cJSON object (to corrupt before assembling) and the data section.
typedef struct {
    cJSON *hdr;
    unsigned char *data;
    size_t dlen;
    int order[512];  // storage order: indexes into model.t
} parts;

static void add_meta_json(cJSON *meta, const char *key, const cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    cJSON_AddStringToObject(meta, key, s);
    free(s);
}

// storage_sorted: by dtype size, largest first, as the safetensors package writes (keeps every tensor aligned);
// otherwise in the model's order.
static parts make_parts(const model *m, int storage_sorted) {
    parts p = {0};
    p.hdr = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(p.hdr, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "audiocap");
    cJSON_AddStringToObject(meta, "format_version", "1");
    cJSON_AddStringToObject(meta, "architecture", "cnext-trans");
    cJSON_AddStringToObject(meta, "model_name", "fixture-tiny");
    add_meta_json(meta, "hparams", m->hparams);
    add_meta_json(meta, "frontend", m->frontend);
    add_meta_json(meta, "decoding", m->decoding);
    add_meta_json(meta, "tokenizer", m->tokenizer);
    add_meta_json(meta, "sources", m->sources);
    add_meta_json(meta, "converter", m->converter);
    for (const cJSON *o = m->over->child; o; o = o->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(meta, o->string);
        if (!cJSON_IsNull(o)) cJSON_AddItemToObject(meta, o->string, cJSON_Duplicate(o, 1));
    }
    int k = 0;
    const size_t sizes[] = {8, 4, 2, 1};
    for (int pass = 0; pass < (storage_sorted ? 4 : 1); pass++)
        for (int i = 0; i < m->n; i++)
            if (!storage_sorted || dtype_bytes(m->t[i].dtype) == sizes[pass]) p.order[k++] = i;
    size_t off = 0;
    for (int i = 0; i < k; i++) off += m->t[p.order[i]].nbytes;
    p.dlen = off;
    p.data = calloc(1, off + 64);  // room for tests that append bytes
    off = 0;
    for (int i = 0; i < k; i++) {
        const tspec *t = &m->t[p.order[i]];
        cJSON *e = cJSON_AddObjectToObject(p.hdr, t->name);
        cJSON_AddStringToObject(e, "dtype", t->dtype);
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
        cJSON *of = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + t->nbytes)));
        if (t->nbytes) memcpy(p.data + off, t->data, t->nbytes);
        off += t->nbytes;
    }
    return p;
}

static void free_parts(parts *p) {
    cJSON_Delete(p->hdr);
    free(p->data);
}

// u64 N, N bytes of header (space-padded to a multiple of 8 when pad), data. Exact-size heap buffer.
static unsigned char *assemble_raw(const char *hdr, size_t hlen, int pad, const unsigned char *data, size_t dlen,
                                   size_t *len) {
    size_t n = pad ? (hlen + 7) / 8 * 8 : hlen;
    *len = 8 + n + dlen;
    unsigned char *b = malloc(*len);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(b + 8, hdr, hlen);
    memset(b + 8 + hlen, ' ', n - hlen);
    if (dlen) memcpy(b + 8 + n, data, dlen);
    return b;
}

static unsigned char *assemble(const parts *p, int pad, size_t *len) {
    char *h = cJSON_PrintUnformatted(p->hdr);
    unsigned char *b = assemble_raw(h, strlen(h), pad, p->data, p->dlen, len);
    free(h);
    return b;
}

static uint64_t header_len(const unsigned char *b) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | b[i];
    return n;
}

static unsigned char *make_file(const model *m, size_t *len) {
    parts p = make_parts(m, 1);
    unsigned char *b = assemble(&p, 1, len);
    free_parts(&p);
    return b;
}

static cJSON *entry(parts *p, const char *name) {
    cJSON *e = cJSON_GetObjectItemCaseSensitive(p->hdr, name);
    if (!e) {
        fprintf(stderr, "test bug: no header entry %s\n", name);
        exit(1);
    }
    return e;
}

static void set_entry(parts *p, const char *name, const char *key, cJSON *value) {
    cJSON *e = entry(p, name);
    if (cJSON_HasObjectItem(e, key)) cJSON_ReplaceItemInObjectCaseSensitive(e, key, value);
    else cJSON_AddItemToObject(e, key, value);
}

static char *replace_once(const char *s, const char *from, const char *to) {
    const char *at = strstr(s, from);
    if (!at) {
        fprintf(stderr, "test bug: '%s' not found\n", from);
        exit(1);
    }
    size_t a = (size_t)(at - s), nf = strlen(from), nt = strlen(to), ns = strlen(s);
    char *r = malloc(ns - nf + nt + 1);
    memcpy(r, s, a);
    memcpy(r + a, to, nt);
    memcpy(r + a + nt, at + nf, ns - a - nf + 1);
    return r;
}

// ---------------------------------------------------------------------------------------------------------
// expectations
// ---------------------------------------------------------------------------------------------------------
static int g_verbose;

// Opens a copy of buf (exact size, so ASan sees any overread) and expects status `want` with a message naming the
// file, carrying a hint, and containing each of the NULL-terminated substrings.
static void expect_fail_buf(const char *label, const unsigned char *buf, size_t len, ac_status want, ...) {
    unsigned char *copy = malloc(len ? len : 1);
    if (len) memcpy(copy, buf, len);
    ac_model_file *mf = (ac_model_file *)&checks;  // must be reset to NULL on failure
    ac_status st = ac_model_file_open_memory(copy, len, NAME, &mf);
    const char *msg = ac_last_error();
    T(st == want, "%s: got %s (%s), want %s", label, ac_status_name(st), msg, ac_status_name(want));
    T(mf == NULL, "%s: *out not NULL after a failure", label);
    if (st == AC_OK && mf) ac_model_file_close(mf);
    if (st == AC_OK) {
        free(copy);
        return;
    }
    T(strncmp(msg, NAME, strlen(NAME)) == 0, "%s: message does not start with the file name: %s", label, msg);
    T(strstr(msg, "hint:") != NULL, "%s: message has no hint: %s", label, msg);
    va_list ap;
    va_start(ap, want);
    for (const char *s; (s = va_arg(ap, const char *));)
        T(strstr(msg, s) != NULL, "%s: message lacks '%s': %s", label, s, msg);
    va_end(ap);
    if (g_verbose) printf("  %-40s -> %s\n", label, msg);
    free(copy);
}

#define EXPECT_FAIL(label, buf, len, ...)                                                                              \
    expect_fail_buf(label, buf, len, AC_ERR_FORMAT, __VA_ARGS__, (const char *)NULL)

static void expect_model_fail(const char *label, const model *m, ...) {
    size_t len;
    unsigned char *b = make_file(m, &len);
    unsigned char *copy = malloc(len);
    memcpy(copy, b, len);
    free(b);
    ac_model_file *mf = (ac_model_file *)&checks;
    ac_status st = ac_model_file_open_memory(copy, len, NAME, &mf);
    const char *msg = ac_last_error();
    T(st == AC_ERR_FORMAT, "%s: got %s (%s), want format_error", label, ac_status_name(st), msg);
    T(mf == NULL, "%s: *out not NULL after a failure", label);
    if (st == AC_OK && mf) ac_model_file_close(mf);
    T(strncmp(msg, NAME, strlen(NAME)) == 0 && strstr(msg, "hint:"), "%s: message lacks file name or hint: %s", label,
      msg);
    va_list ap;
    va_start(ap, m);
    for (const char *s; (s = va_arg(ap, const char *));)
        T(strstr(msg, s) != NULL, "%s: message lacks '%s': %s", label, s, msg);
    va_end(ap);
    if (g_verbose) printf("  %-40s -> %s\n", label, msg);
    free(copy);
}

#define EXPECT_MODEL_FAIL(label, m, ...) expect_model_fail(label, m, __VA_ARGS__, (const char *)NULL)

static void expect_parts_fail(const char *label, parts *p, ...) {
    size_t len;
    unsigned char *b = assemble(p, 1, &len);
    ac_model_file *mf = (ac_model_file *)&checks;
    ac_status st = ac_model_file_open_memory(b, len, NAME, &mf);
    const char *msg = ac_last_error();
    T(st == AC_ERR_FORMAT, "%s: got %s (%s), want format_error", label, ac_status_name(st), msg);
    T(mf == NULL, "%s: *out not NULL after a failure", label);
    if (st == AC_OK && mf) ac_model_file_close(mf);
    T(strncmp(msg, NAME, strlen(NAME)) == 0 && strstr(msg, "hint:"), "%s: message lacks file name or hint: %s", label,
      msg);
    va_list ap;
    va_start(ap, p);
    for (const char *s; (s = va_arg(ap, const char *));)
        T(strstr(msg, s) != NULL, "%s: message lacks '%s': %s", label, s, msg);
    va_end(ap);
    if (g_verbose) printf("  %-40s -> %s\n", label, msg);
    free(b);
}

#define EXPECT_PARTS_FAIL(label, p, ...) expect_parts_fail(label, p, __VA_ARGS__, (const char *)NULL)

// ---------------------------------------------------------------------------------------------------------
// reference conversions, written from the IEEE definitions (value = sign * significand * 2^exponent)
// ---------------------------------------------------------------------------------------------------------
static float ref_f16(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 0x1f, f = h & 0x3ff;
    float v = e == 0 ? ldexpf((float)f, -24) : e == 31 ? (f ? NAN : INFINITY) : ldexpf((float)(1024 + f), e - 25);
    return s ? -v : v;
}

static float ref_bf16(uint16_t b) {
    int s = b >> 15, e = (b >> 7) & 0xff, f = b & 0x7f;
    float v = e == 0 ? ldexpf((float)f, -133) : e == 255 ? (f ? NAN : INFINITY) : ldexpf((float)(128 + f), e - 134);
    return s ? -v : v;
}

static int same_float(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return a == b && signbit(a) == signbit(b);
}

// ---------------------------------------------------------------------------------------------------------
// (a) valid files
// ---------------------------------------------------------------------------------------------------------
// emb_scale is compared to 1e-14: cJSON's printer (the test's writer) keeps 15 significant digits where it can.
static void check_config(const ac_model_file *mf, int n_tasks) {
    const ac_model_config *c = ac_model_file_config(mf);
    T(c->format_version == 1 && !strcmp(c->architecture, "cnext-trans") && !strcmp(c->model_name, "fixture-tiny"),
      "identity: %d %s %s", c->format_version, c->architecture, c->model_name);
    int ok = c->encoder.in_chans == 1 && c->encoder.stem_kernel[0] == 4 && c->encoder.stem_kernel[1] == 4 &&
             c->encoder.stem_stride[0] == 4 && c->encoder.stem_stride[1] == 4 && c->encoder.stem_padding[0] == 4 &&
             c->encoder.stem_padding[1] == 0 && c->encoder.ln_eps == 1e-6 &&
             c->encoder.frame_len_rule == AC_FRAME_LEN_CONETTE;
    for (int i = 0; i < 4; i++) ok = ok && c->encoder.depths[i] == 1 && c->encoder.dims[i] == DIMS[i];
    T(ok, "encoder hparams differ from what was written");
    T(c->projection.in_features == C3 && c->projection.out_features == D && c->projection.activation == AC_ACT_RELU,
      "projection hparams");
    T(c->decoder.d_model == D && c->decoder.nhead == NHEAD && c->decoder.num_layers == L &&
          c->decoder.dim_feedforward == FF && c->decoder.activation == AC_ACT_GELU && !c->decoder.norm_first &&
          c->decoder.ln_eps == 1e-5 && fabs(c->decoder.emb_scale - 2.8284271247461903) < 1e-14 &&
          c->decoder.max_positions == MAXPOS,
      "decoder hparams");
    T(c->vocab_size == V, "vocab_size %d", c->vocab_size);
    T(c->frontend.sample_rate == 32000 && c->frontend.n_fft == NFFT && c->frontend.win_length == NFFT &&
          c->frontend.hop == 8 && c->frontend.n_mels == NMELS && c->frontend.fmin == 50 && c->frontend.fmax == 14000 &&
          c->frontend.amin == 1e-10 && c->frontend.ref == 1.0 && !c->frontend.has_top_db &&
          c->frontend.bn_eps == 1e-5 && c->frontend.center && c->frontend.lowpass_filter_width == 6 &&
          c->frontend.rolloff == 0.99 && !strcmp(c->frontend.window, "hann_periodic") &&
          !strcmp(c->frontend.pad_mode, "reflect") && !strcmp(c->frontend.mel_scale, "slaney") &&
          !strcmp(c->frontend.resampler, "torchaudio_sinc_hann") &&
          !strcmp(c->frontend.channel_mix, "mean_after_resample"),
      "frontend parameters differ from what was written");
    T(c->decoding.beam_size == 3 && c->decoding.min_pred_size == 3 && c->decoding.max_pred_size == 20 &&
          c->decoding.pad_id == 0 && c->decoding.bos_id == 1 && c->decoding.eos_id == 2 && c->decoding.unk_id == 3 &&
          !strcmp(c->decoding.forbid_rep_mode, "content_words"),
      "decoding defaults");
    T(c->decoding.n_tasks == n_tasks, "n_tasks %d, want %d", c->decoding.n_tasks, n_tasks);
    if (n_tasks)
        T(!strcmp(c->decoding.task_names[0], "clotho") && !strcmp(c->decoding.task_names[1], "audiocaps") &&
              c->decoding.default_task == 0 && c->decoding.task_token_ids[0] == 10 &&
              c->decoding.task_token_ids[1] == 11,
          "tasks: %s %s default %d ids %lld %lld", c->decoding.task_names[0], c->decoding.task_names[1],
          c->decoding.default_task, (long long)c->decoding.task_token_ids[0], (long long)c->decoding.task_token_ids[1]);
    else T(c->decoding.default_task == -1, "default_task %d without tasks", c->decoding.default_task);
    int tok_ok = !strcmp(c->tokenizer.kind, "conette_aac") && c->tokenizer.n_itos == V && c->tokenizer.n_post == 6;
    for (int i = 0; tok_ok && i < V; i++) tok_ok = !strcmp(c->tokenizer.itos[i], ITOS[i]);
    for (int i = 0; tok_ok && i < 6; i++) tok_ok = !strcmp(c->tokenizer.post_decoding[i], POST[i]);
    T(tok_ok, "tokenizer differs from what was written");
    T(c->n_sources == 1 && !strcmp(c->sources[0].name, "pytorch_model.bin") && c->sources[0].bytes == 123456 &&
          strlen(c->sources[0].sha256) == 64 && !strcmp(c->converter_tool, "tools/convert.py") &&
          !strcmp(c->converter_version, "0.1.0"),
      "sources/converter");
    const char *fv = ac_model_file_meta(mf, "format_version");
    T(fv && !strcmp(fv, "1") && ac_model_file_meta(mf, "no such key") == NULL && ac_model_file_meta(mf, "hparams") &&
          strstr(ac_model_file_meta(mf, "hparams"), "\"dims\""),
      "ac_model_file_meta");
}

// Every tensor's name, dtype, shape and bytes as written; data pointing into buf when buf is given.
static void check_tensors(const ac_model_file *mf, const model *m, const unsigned char *buf, uint64_t data_start) {
    T(ac_model_file_n_tensors(mf) == m->n, "%d tensors, wrote %d", ac_model_file_n_tensors(mf), m->n);
    int bad = 0, bad_ptr = 0;
    uint64_t prev_end = 0;
    for (int i = 0; i < m->n; i++) {
        const tspec *s = &m->t[i];
        const ac_tensor *t;
        if (ac_model_file_tensor(mf, s->name, &t) != AC_OK) {
            bad++;
            continue;
        }
        int same = !strcmp(t->name, s->name) && !strcmp(ac_dtype_name(t->dtype), s->dtype) && t->ndim == s->ndim &&
                   t->nbytes == s->nbytes && t->nbytes == (size_t)t->numel * ac_dtype_size(t->dtype) &&
                   (!t->nbytes || memcmp(t->data, s->data, t->nbytes) == 0);
        for (int d = 0; d < s->ndim; d++) same = same && t->shape[d] == s->shape[d];
        bad += !same;
        if (buf && (const unsigned char *)t->data != buf + data_start + t->offset) bad_ptr++;
    }
    T(bad == 0, "%d tensors differ from what was written", bad);
    T(bad_ptr == 0, "%d tensors do not point into the caller's buffer", bad_ptr);
    // index order is storage order and every index resolves to the tensor of that name
    int order_ok = 1;
    for (int i = 0; i < m->n; i++) {
        const ac_tensor *t, *u;
        if (ac_model_file_tensor_at(mf, i, &t) || ac_model_file_tensor(mf, t->name, &u) || t != u ||
            t->offset < prev_end)
            order_ok = 0;
        else prev_end = t->offset + t->nbytes;
    }
    T(order_ok, "tensor_at is not storage order, or disagrees with lookup by name");
    T(ac_model_file_has_tensor(mf, "model.forbid_rep_mask") && !ac_model_file_has_tensor(mf, "model.forbid_rep_mas") &&
          !ac_model_file_has_tensor(mf, "zzz") && !ac_model_file_has_tensor(mf, ""),
      "has_tensor");
}

// ac_tensor_to_f32 on every floating tensor: F32 bit-exact, F16/BF16 equal to the reference decoding.
static void check_conversion(const ac_model_file *mf) {
    int bad = 0, nf = 0, nh = 0, nb = 0;
    for (int i = 0; i < ac_model_file_n_tensors(mf); i++) {
        const ac_tensor *t;
        ac_model_file_tensor_at(mf, i, &t);
        if (t->dtype == AC_DTYPE_I64 || t->dtype == AC_DTYPE_BOOL) {
            float x;
            T(ac_tensor_to_f32(t, &x) == AC_ERR_INVALID_ARG && strstr(ac_last_error(), t->name), "to_f32 on %s %s: %s",
              ac_dtype_name(t->dtype), t->name, ac_last_error());
            continue;
        }
        float *f = malloc(sizeof(float) * (size_t)t->numel + 1);
        if (ac_tensor_to_f32(t, f) != AC_OK) {
            bad++;
            free(f);
            continue;
        }
        const unsigned char *p = t->data;
        for (int64_t k = 0; k < t->numel; k++) {
            float want;
            if (t->dtype == AC_DTYPE_F32) memcpy(&want, p + 4 * k, 4), nf++;
            else {
                uint16_t h = (uint16_t)(p[2 * k] | p[2 * k + 1] << 8);
                want = t->dtype == AC_DTYPE_F16 ? ref_f16(h) : ref_bf16(h);
                t->dtype == AC_DTYPE_F16 ? nh++ : nb++;
            }
            if (t->dtype == AC_DTYPE_F32 ? memcmp(&want, &f[k], 4) != 0 : !same_float(want, f[k])) bad++;
        }
        free(f);
    }
    T(bad == 0, "%d converted values differ", bad);
    printf("  to_f32 over the model: %d F32, %d F16, %d BF16 values as written/decoded\n", nf, nh, nb);
}

static void test_halves(void) {
    // all 65536 patterns, stored one byte off alignment
    unsigned char *raw = malloc(2 * 65536 + 1);
    for (uint32_t i = 0; i < 65536; i++) raw[1 + 2 * i] = (unsigned char)i, raw[2 + 2 * i] = (unsigned char)(i >> 8);
    float *out = malloc(sizeof(float) * 65536);
    ac_tensor t = {.name = "halves", .ndim = 1, .shape = {65536}, .numel = 65536, .nbytes = 131072, .data = raw + 1};
    int bad16 = 0, badbf = 0, badc = 0;
    t.dtype = AC_DTYPE_F16;
    T(ac_tensor_to_f32(&t, out) == AC_OK, "F16 conversion failed");
    for (uint32_t i = 0; i < 65536; i++) {
        bad16 += !same_float(out[i], ref_f16((uint16_t)i));
#ifdef __FLT16_MAX__  // the compiler's own binary16 is a second, independent oracle
        _Float16 h;
        uint16_t u = (uint16_t)i;
        memcpy(&h, &u, 2);
        badc += !same_float(out[i], (float)h);
#endif
    }
    t.dtype = AC_DTYPE_BF16;
    T(ac_tensor_to_f32(&t, out) == AC_OK, "BF16 conversion failed");
    for (uint32_t i = 0; i < 65536; i++) {
        uint32_t bits = i << 16;
        float want;
        memcpy(&want, &bits, 4);
        badbf += !same_float(out[i], ref_bf16((uint16_t)i)) || !same_float(out[i], want);
    }
    T(bad16 == 0 && badc == 0 && badbf == 0, "F16: %d differ from the definition, %d from _Float16; BF16: %d differ",
      bad16, badc, badbf);
    // spot values, written out
    struct {
        ac_dtype dt;
        uint16_t bits;
        float want;  // NAN: any NaN
    } spot[] = {
        {AC_DTYPE_F16, 0x0001, 0x1p-24f},      {AC_DTYPE_F16, 0x03ff, 0x1.ff8p-15f},
        {AC_DTYPE_F16, 0x0400, 0x1p-14f},      {AC_DTYPE_F16, 0x7bff, 65504.0f},
        {AC_DTYPE_F16, 0x3c00, 1.0f},          {AC_DTYPE_F16, 0xc000, -2.0f},
        {AC_DTYPE_F16, 0x3555, 0x1.554p-2f},   {AC_DTYPE_F16, 0x8000, -0.0f},
        {AC_DTYPE_F16, 0x8001, -0x1p-24f},     {AC_DTYPE_F16, 0x7c00, INFINITY},
        {AC_DTYPE_F16, 0xfc00, -INFINITY},     {AC_DTYPE_F16, 0x7e00, NAN},
        {AC_DTYPE_F16, 0x7c01, NAN},           {AC_DTYPE_BF16, 0x0001, 0x1p-133f},
        {AC_DTYPE_BF16, 0x007f, 0x1.fcp-127f}, {AC_DTYPE_BF16, 0x7f7f, 0x1.fep127f},
        {AC_DTYPE_BF16, 0x3f80, 1.0f},         {AC_DTYPE_BF16, 0xc040, -3.0f},
        {AC_DTYPE_BF16, 0x8000, -0.0f},        {AC_DTYPE_BF16, 0x7f80, INFINITY},
        {AC_DTYPE_BF16, 0xff80, -INFINITY},    {AC_DTYPE_BF16, 0x7fc1, NAN},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof spot / sizeof *spot; i++) {
        unsigned char b[2] = {(unsigned char)spot[i].bits, (unsigned char)(spot[i].bits >> 8)};
        ac_tensor s = {.name = "spot", .dtype = spot[i].dt, .ndim = 0, .numel = 1, .nbytes = 2, .data = b};
        float f = 0;
        ac_tensor_to_f32(&s, &f);
        if (!same_float(f, spot[i].want)) {
            bad++;
            fprintf(stderr, "  %s 0x%04x -> %a, want %a\n", ac_dtype_name(spot[i].dt), spot[i].bits, f, spot[i].want);
        }
    }
    T(bad == 0, "%d spot conversions wrong", bad);
    // F32 is copied verbatim, NaN payloads and all
    unsigned char f32[13];
    uint32_t pats[3] = {0x7fa00001u, 0x80000000u, 0x00000001u};
    memcpy(f32 + 1, pats, 12);
    ac_tensor s = {
        .name = "f32", .dtype = AC_DTYPE_F32, .ndim = 1, .shape = {3}, .numel = 3, .nbytes = 12, .data = f32 + 1};
    uint32_t got[3];
    T(ac_tensor_to_f32(&s, (float *)got) == AC_OK && !memcmp(got, pats, 12), "F32 not copied bit for bit");
    printf("  F16 and BF16: all 65536 patterns each, %zu spot values (subnormal, inf, nan, -0) exact%s\n",
           sizeof spot / sizeof *spot,
#ifdef __FLT16_MAX__
           "; F16 also equals _Float16"
#else
           ""
#endif
    );
    free(raw);
    free(out);
}

static char g_tmp[256];

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(b, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "FAIL: cannot write %s\n", path);
        g_failures++;
    }
}

static char *read_all(FILE *f) {
    fflush(f);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = '\0';
    return s;
}

static void test_valid(void) {
    printf("(a) valid files:\n");
    model m;
    make_model(&m, DEFAULT);
    size_t len;
    unsigned char *buf = make_file(&m, &len);
    uint64_t N = header_len(buf);
    T((8 + N) % 8 == 0, "writer did not align the data section");
    // from memory: zero-copy views into the caller's buffer
    ac_model_file *mf = NULL;
    ac_status st = ac_model_file_open_memory(buf, len, NAME, &mf);
    T(st == AC_OK, "open_memory: %s", ac_last_error());
    if (st == AC_OK) {
        T(!strcmp(ac_model_file_name(mf), NAME), "name %s", ac_model_file_name(mf));
        check_config(mf, 2);
        check_tensors(mf, &m, buf, 8 + N);
        check_conversion(mf);
        // info output
        FILE *f = tmpfile();
        T(ac_model_file_print_info(mf, f, 0) == AC_OK, "print_info: %s", ac_last_error());
        char *s = read_all(f);
        const char *want[] = {"format_version 1",
                              "cnext-trans",
                              "fixture-tiny",
                              "depths [1, 1, 1, 1]",
                              "dims [4, 8, 8, 8]",
                              "d_model 8, nhead 2, num_layers 2, dim_feedforward 16",
                              "post-LN",
                              "32000 Hz, n_fft 16",
                              "8 mels (slaney) 50-14000 Hz",
                              "top_db none",
                              "beam_size 3, pred size 3..20",
                              "clotho (token 10, default), audiocaps (token 11)",
                              "vocab_size 13: \"<pad>\" \"<bos>\"",
                              "\"falling\" ...",
                              "clean_hyphen_spaces",
                              "pytorch_model.bin, 123456 bytes, sha256 9f86d0",
                              "tools/convert.py 0.1.0",
                              "F16      1 tensors",
                              "BF16     1 tensors",
                              "BOOL     1 tensors",
                              "I64      2 tensors"};
        int miss = 0;
        for (size_t i = 0; i < sizeof want / sizeof *want; i++)
            if (!strstr(s, want[i])) {
                miss++;
                fprintf(stderr, "  info output lacks '%s'\n", want[i]);
            }
        char tline[64];
        snprintf(tline, sizeof tline, "tensors         %d, ", m.n);
        T(miss == 0 && strstr(s, tline), "info output incomplete:\n%s", s);
        if (g_verbose) printf("%s", s);
        int lines0 = 0;
        for (char *p = s; *p; p++) lines0 += *p == '\n';
        free(s);
        fclose(f);
        f = tmpfile();
        T(ac_model_file_print_info(mf, f, 1) == AC_OK, "print_info --tensors");
        s = read_all(f);
        int lines1 = 0;
        for (char *p = s; *p; p++) lines1 += *p == '\n';
        T(lines1 == lines0 + 2 + m.n && strstr(s, "model.decoder.emb_layer.weight") && strstr(s, "F16   [13, 8]"),
          "--tensors listing: %d lines vs %d", lines1, lines0);
        free(s);
        fclose(f);
        printf("  from memory: %d tensors, hparams/metadata/bytes as written; info %d lines (+%d with --tensors)\n",
               m.n, lines0, lines1 - lines0);
        // API misuse on a valid object
        const ac_tensor *t = (const ac_tensor *)&checks;
        T(ac_model_file_tensor(mf, "model.decoder.nope", &t) == AC_ERR_INVALID_ARG && t == NULL &&
              strstr(ac_last_error(), NAME) && strstr(ac_last_error(), "model.decoder.nope"),
          "lookup of a missing name: %s", ac_last_error());
        T(ac_model_file_tensor_at(mf, -1, &t) == AC_ERR_INVALID_ARG && t == NULL, "tensor_at(-1)");
        T(ac_model_file_tensor_at(mf, m.n, &t) == AC_ERR_INVALID_ARG, "tensor_at(n)");
        T(ac_model_file_tensor(mf, NULL, &t) == AC_ERR_INVALID_ARG, "tensor(NULL name)");
        T(ac_model_file_print_info(NULL, stdout, 0) == AC_ERR_INVALID_ARG, "print_info(NULL)");
        ac_model_file_close(mf);
    }
    // from disk (mmap)
    char path[512];
    snprintf(path, sizeof path, "%s/tiny.safetensors", g_tmp);
    write_bytes(path, buf, len);
    st = ac_model_file_open(path, &mf);
    T(st == AC_OK, "open from disk: %s", ac_last_error());
    if (st == AC_OK) {
        T(!strcmp(ac_model_file_name(mf), path), "name");
        check_config(mf, 2);
        check_tensors(mf, &m, NULL, 0);
        ac_model_file_close(mf);
        printf("  from disk (mmap): same hparams and bytes\n");
    }
    const char *keep = getenv("AC_TEST_MODEL_OUT");  // e.g. to try `audiocap info` on it
    if (keep && *keep) write_bytes(keep, buf, len);
    free(buf);
    free_model(&m);

    // F32-only, no tasks, no optional tensors, an extra metadata key (allowed: safetensors metadata is open)
    make_model(&m, (model_opts){0, 0, 0});
    set_meta_raw(&m, "license", "MIT");
    buf = make_file(&m, &len);
    st = ac_model_file_open_memory(buf, len, NAME, &mf);
    T(st == AC_OK, "no-task model: %s", ac_last_error());
    if (st == AC_OK) {
        check_config(mf, 0);
        check_tensors(mf, &m, buf, 8 + header_len(buf));
        T(!ac_model_file_has_tensor(mf, "model.task_id_to_token_id") &&
              !strcmp(ac_model_file_meta(mf, "license"), "MIT"),
          "no-task model contents");
        FILE *f = tmpfile();
        ac_model_file_print_info(mf, f, 0);
        char *s = read_all(f);
        T(strstr(s, "none (no task embedding)") != NULL, "info without tasks:\n%s", s);
        free(s);
        fclose(f);
        ac_model_file_close(mf);
    }
    free(buf);
    // unaligned: the 13-byte BOOL tensor first and no header padding (one space added where the data would
    // otherwise land 4-aligned), so the F32 tensors after it are misaligned
    tspec mask = *find_t(&m, "model.forbid_rep_mask");
    int mi = (int)(find_t(&m, "model.forbid_rep_mask") - m.t);
    memmove(m.t + 1, m.t, sizeof *m.t * (size_t)mi);
    m.t[0] = mask;
    parts p = make_parts(&m, 0);
    char *h = cJSON_PrintUnformatted(p.hdr);
    size_t hl = strlen(h);
    char *h2 = malloc(hl + 2);
    memcpy(h2, h, hl);
    h2[hl] = ' ';
    buf = assemble_raw(h2, (8 + hl + 13) % 4 ? hl : hl + 1, 0, p.data, p.dlen, &len);
    free(h);
    free(h2);
    st = ac_model_file_open_memory(buf, len, NAME, &mf);
    T(st == AC_OK, "unaligned model: %s", ac_last_error());
    if (st == AC_OK) {
        const ac_tensor *t;
        check_tensors(mf, &m, NULL, 0);
        check_conversion(mf);
        int misaligned = 0;
        for (int i = 0; i < ac_model_file_n_tensors(mf); i++) {
            ac_model_file_tensor_at(mf, i, &t);
            misaligned += ((uintptr_t)t->data % ac_dtype_size(t->dtype)) != 0;
        }
        T(misaligned > 0, "the unaligned layout has no misaligned tensor");
        printf("  unpadded header, BOOL first: %d of %d tensors misaligned, read and converted correctly\n", misaligned,
               ac_model_file_n_tensors(mf));
        ac_model_file_close(mf);
    }
    free(buf);
    free_parts(&p);
    free_model(&m);
}

// ---------------------------------------------------------------------------------------------------------
// (b) corruptions
// ---------------------------------------------------------------------------------------------------------
static unsigned char *with_len(const unsigned char *b, size_t len, uint64_t n) {
    unsigned char *c = malloc(len);
    memcpy(c, b, len);
    for (int i = 0; i < 8; i++) c[i] = (unsigned char)(n >> (8 * i));
    return c;
}

#define RAW(label, lit, s1, s2) raw_case(label, lit, sizeof(lit) - 1, s1, s2)
static void raw_case(const char *label, const char *hdr, size_t hlen, const char *s1, const char *s2) {
    size_t len;
    unsigned char *b = assemble_raw(hdr, hlen, 1, NULL, 0, &len);
    expect_fail_buf(label, b, len, AC_ERR_FORMAT, s1, s2, (const char *)NULL);
    free(b);
}

// The valid header text with one edit, as a file with the valid data section.
static void text_case(const char *label, const char *from, const char *to, const char *s1, const char *s2) {
    model m;
    make_model(&m, DEFAULT);
    parts p = make_parts(&m, 1);
    char *h = cJSON_PrintUnformatted(p.hdr);
    char *e;
    if (from) e = replace_once(h, from, to);
    else {  // append
        e = malloc(strlen(h) + strlen(to) + 1);
        strcpy(e, h);
        strcat(e, to);
    }
    size_t len;
    unsigned char *b = assemble_raw(e, strlen(e), 1, p.data, p.dlen, &len);
    expect_fail_buf(label, b, len, AC_ERR_FORMAT, s1, s2, (const char *)NULL);
    free(b);
    free(e);
    free(h);
    free_parts(&p);
    free_model(&m);
}

// Replaces key `key` of the metadata object `obj` (e.g. m.hparams's "decoder") with `value`, or deletes it.
static void jset(cJSON *obj, const char *path, cJSON *value) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    char *dot;
    cJSON *o = obj;
    char *k = buf;
    while ((dot = strchr(k, '.'))) {
        *dot = '\0';
        o = cJSON_GetObjectItemCaseSensitive(o, k);
        k = dot + 1;
    }
    if (!o) {
        fprintf(stderr, "test bug: no %s\n", path);
        exit(1);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(o, k);
    if (value) cJSON_AddItemToObject(o, k, value);
}

// One model with one metadata JSON edit.
typedef enum { HP, FE, DE, TO, SO, CO } which;
static void meta_case(const char *label, which w, const char *path, cJSON *value, const char *s1, const char *s2) {
    model m;
    make_model(&m, DEFAULT);
    cJSON *objs[] = {m.hparams, m.frontend, m.decoding, m.tokenizer, m.sources, m.converter};
    jset(objs[w], path, value);
    EXPECT_MODEL_FAIL(label, &m, s1, s2);
    free_model(&m);
}

static cJSON *jraw(const char *json) {
    cJSON *j = cJSON_Parse(json);
    if (!j) {
        fprintf(stderr, "test bug: bad JSON %s\n", json);
        exit(1);
    }
    return j;
}

static void test_container(void) {
    printf("(b) container:\n");
    int count_cases_before = checks;
    unsigned char zero[8] = {0};
    EXPECT_FAIL("empty file", zero, 0, "0 bytes", "too short");
    EXPECT_FAIL("7-byte file", zero, 7, "7 bytes", "too short");
    model m;
    make_model(&m, DEFAULT);
    size_t len;
    unsigned char *vb = make_file(&m, &len);
    unsigned char *b = with_len(vb, len, (100ull << 20) + 1);
    EXPECT_FAIL("header length > 100 MiB", b, len, "100 MiB");
    free(b);
    b = with_len(vb, len, UINT64_MAX);
    EXPECT_FAIL("header length 2^64-1", b, len, "100 MiB");
    free(b);
    b = with_len(vb, len, len - 7);
    EXPECT_FAIL("header length past the file end", b, len, "runs past the end of the file");
    free(b);
    unsigned char only_len[8] = {0};
    EXPECT_FAIL("8-byte file, empty header", only_len, 8, "not valid JSON");
    free(vb);
    free_model(&m);

    RAW("header not JSON", "{not json", "not valid JSON", NULL);
    RAW("header a JSON list", "[1, 2, 3]", "must be a JSON object", "an array");
    RAW("header a JSON string", "\"audiocap\"", "must be a JSON object", NULL);
    RAW("header {}", "{}", "no __metadata__", "convert it with tools/convert.py");
    RAW("NUL inside the header", "{\"__metadata__\": {\"format\": \"audio\0cap\"}}", "NUL byte at offset 34", NULL);
    RAW("invalid UTF-8 in the header",
        "{\"__metadata__\": {\"format\": \"audio\xff"
        "cap\"}}",
        "UTF-8", "byte 34");
    RAW("overlong UTF-8", "{\"x\xc0\xaf\": 1}", "UTF-8", NULL);
    RAW("UTF-8 surrogate", "{\"x\xed\xa0\x80\": 1}", "UTF-8", NULL);
    RAW("__metadata__ a list", "{\"__metadata__\": []}", "__metadata__ must be a JSON object", NULL);
    RAW("two __metadata__", "{\"__metadata__\": {}, \"__metadata__\": {}}", "two __metadata__", NULL);
    text_case("garbage after the JSON", NULL, " x", "not valid JSON", NULL);
    text_case("shape 1e999", "\"F16\",\"shape\":[13,8]", "\"F16\",\"shape\":[1e999,8]",
              "tensor model.decoder.emb_layer.weight: shape[0]", NULL);
    text_case("duplicate __metadata__ key", "\"format_version\":\"1\"",
              "\"format_version\":\"1\",\"format_version\":\"1\"", "__metadata__ has the key \"format_version\" twice",
              NULL);

    // __metadata__ values
    struct {
        const char *label, *key, *value;  // value NULL: delete the key
        int number;
        const char *s1, *s2;
    } mc[] = {
        {"format_version a number", "format_version", "1", 1, "format_version", "must be a string"},
        {"format \"pt\"", "format", "pt", 0, "format is \"pt\"", "not \"audiocap\""},
        {"format missing", "format", NULL, 0, "no format", NULL},
        {"format_version \"2\"", "format_version", "2", 0, "format version \"2\"", "reads format version 1"},
        {"format_version \"1.0\"", "format_version", "1.0", 0, "format version \"1.0\"", "re-convert"},
        {"format_version missing", "format_version", NULL, 0, "no format_version", NULL},
        {"architecture unknown", "architecture", "resnet-lstm", 0, "unknown architecture \"resnet-lstm\"", NULL},
        {"architecture missing", "architecture", NULL, 0, "no architecture", NULL},
        {"model_name missing", "model_name", NULL, 0, "no model_name", NULL},
        {"hparams missing", "hparams", NULL, 0, "no hparams", NULL},
        {"hparams not JSON", "hparams", "{\"encoder\": ", 0, "hparams is not valid JSON", NULL},
        {"hparams a list", "hparams", "[1]", 0, "hparams must be a JSON object", NULL},
        {"hparams duplicate key", "hparams", "{\"vocab_size\": 13, \"vocab_size\": 13}", 0, "hparams has the key",
         "vocab_size"},
        {"frontend not JSON", "frontend", "nope", 0, "frontend is not valid JSON", NULL},
        {"decoding missing", "decoding", NULL, 0, "no decoding", NULL},
        {"tokenizer trailing text", "tokenizer", "{} {}", 0, "tokenizer is not valid JSON", NULL},
        {"sources an object", "sources", "{}", 0, "sources must be a JSON list", NULL},
        {"converter missing", "converter", NULL, 0, "no converter", NULL},
    };
    for (size_t i = 0; i < sizeof mc / sizeof *mc; i++) {
        make_model(&m, DEFAULT);
        if (!mc[i].value) set_meta(&m, mc[i].key, NULL);
        else if (mc[i].number) set_meta(&m, mc[i].key, cJSON_CreateNumber(atof(mc[i].value)));
        else set_meta_raw(&m, mc[i].key, mc[i].value);
        EXPECT_MODEL_FAIL(mc[i].label, &m, mc[i].s1, mc[i].s2);
        free_model(&m);
    }

    // hparams / frontend / decoding / tokenizer / sources / converter keys
    meta_case("hparams.decoder.nhead missing", HP, "decoder.nhead", NULL, "hparams.decoder.nhead is missing", NULL);
    meta_case("hparams.encoder missing", HP, "encoder", NULL, "hparams.encoder is missing", NULL);
    meta_case("hparams.encoder a list", HP, "encoder", jraw("[]"), "hparams.encoder must be an object", NULL);
    meta_case("depths a string", HP, "encoder.depths", cJSON_CreateString("x"), "hparams.encoder.depths", "list of 4");
    meta_case("depths of 3", HP, "encoder.depths", jraw("[1, 1, 1]"), "hparams.encoder.depths", "list of 4");
    meta_case("depths negative", HP, "encoder.depths", jraw("[1, 1, -1, 1]"), "hparams.encoder.depths[2]", "-1");
    meta_case("depths huge", HP, "encoder.depths", jraw("[1, 1, 1e9, 1]"), "hparams.encoder.depths[2]", NULL);
    meta_case("dims fractional", HP, "encoder.dims", jraw("[4, 8, 8, 8.5]"), "hparams.encoder.dims[3]", "8.5");
    meta_case("stem_padding missing", HP, "encoder.stem_padding", NULL, "hparams.encoder.stem_padding", NULL);
    meta_case("ln_eps a string", HP, "encoder.ln_eps", cJSON_CreateString("1e-6"), "hparams.encoder.ln_eps", NULL);
    meta_case("ln_eps zero", HP, "decoder.ln_eps", cJSON_CreateNumber(0), "hparams.decoder.ln_eps", "positive");
    meta_case("frame_len_rule unknown", HP, "encoder.frame_len_rule", cJSON_CreateString("fast"),
              "hparams.encoder.frame_len_rule", "conette, dcase2024");
    meta_case("activation unknown", HP, "decoder.activation", cJSON_CreateString("swish"), "hparams.decoder.activation",
              NULL);
    meta_case("norm_first a number", HP, "decoder.norm_first", cJSON_CreateNumber(0), "hparams.decoder.norm_first",
              "true or false");
    meta_case("nhead not dividing d_model", HP, "decoder.nhead", cJSON_CreateNumber(3), "nhead 3", NULL);
    meta_case("num_layers zero", HP, "decoder.num_layers", cJSON_CreateNumber(0), "hparams.decoder.num_layers", NULL);
    meta_case("projection.in_features != dims[3]", HP, "projection.in_features", cJSON_CreateNumber(7),
              "projection.in_features 7", "dims[3]");
    meta_case("projection.out_features != d_model", HP, "projection.out_features", cJSON_CreateNumber(9),
              "projection.out_features 9", NULL);
    meta_case("vocab_size missing", HP, "vocab_size", NULL, "hparams.vocab_size", NULL);
    meta_case("vocab_size null", HP, "vocab_size", cJSON_CreateNull(), "hparams.vocab_size", "null");
    meta_case("frontend.n_mels missing", FE, "n_mels", NULL, "frontend.n_mels is missing", NULL);
    meta_case("frontend.n_fft a string", FE, "n_fft", cJSON_CreateString("16"), "frontend.n_fft", NULL);
    meta_case("frontend.win_length > n_fft", FE, "win_length", cJSON_CreateNumber(17), "frontend.win_length", NULL);
    meta_case("frontend.top_db a string", FE, "top_db", cJSON_CreateString("none"), "frontend.top_db", NULL);
    meta_case("frontend.center missing", FE, "center", NULL, "frontend.center", NULL);
    meta_case("frontend.fmin >= fmax", FE, "fmin", cJSON_CreateNumber(20000), "frontend.fmin", NULL);
    meta_case("decoding.bos_id = vocab_size", DE, "bos_id", cJSON_CreateNumber(V), "decoding.bos_id = 13",
              "vocab_size 13");
    meta_case("decoding.eos_id negative", DE, "eos_id", cJSON_CreateNumber(-1), "decoding.eos_id", NULL);
    meta_case("decoding.unk_id missing", DE, "unk_id", NULL, "decoding.unk_id", NULL);
    meta_case("decoding.pad_id a string", DE, "pad_id", cJSON_CreateString("0"), "decoding.pad_id", NULL);
    meta_case("decoding.beam_size zero", DE, "beam_size", cJSON_CreateNumber(0), "decoding.beam_size", NULL);
    meta_case("decoding.min > max pred size", DE, "min_pred_size", cJSON_CreateNumber(21), "min_pred_size 21", NULL);
    meta_case("task_names not strings", DE, "task_names", jraw("[1]"), "decoding.task_names[0]", NULL);
    meta_case("task_names a string", DE, "task_names", cJSON_CreateString("clotho"), "decoding.task_names", NULL);
    meta_case(
        "task_names 17 tasks", DE, "task_names",
        jraw("[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"]"),
        "more than 16", NULL);
    meta_case("task name of 64 bytes", DE, "task_names",
              jraw("[\"clotho\", \"0123456789012345678901234567890123456789012345678901234567890123\"]"),
              "decoding.task_names[1]", "at most 63");
    meta_case("task_names repeated", DE, "task_names", jraw("[\"clotho\", \"clotho\"]"), "\"clotho\" twice", NULL);
    meta_case("default_task unknown", DE, "default_task", cJSON_CreateString("macs"), "decoding.default_task \"macs\"",
              NULL);
    meta_case("default_task a number", DE, "default_task", cJSON_CreateNumber(0), "decoding.default_task", NULL);
    meta_case("tokenizer.itos 12 entries", TO, "itos", cJSON_CreateStringArray(ITOS, V - 1), "itos has 12 entries",
              "vocab_size is 13");
    {
        cJSON *it = cJSON_CreateStringArray(ITOS, V);
        cJSON_ReplaceItemInArray(it, 5, cJSON_CreateNumber(5));
        meta_case("tokenizer.itos[5] a number", TO, "itos", it, "tokenizer.itos[5]", NULL);
    }
    meta_case("tokenizer.kind missing", TO, "kind", NULL, "tokenizer.kind", NULL);
    meta_case("tokenizer.kind unknown", TO, "kind", cJSON_CreateString("bpe"), "tokenizer.kind", NULL);
    meta_case("post_decoding unknown step", TO, "post_decoding", jraw("[\"strip\", \"shout\"]"),
              "tokenizer.post_decoding[1]", "shout");
    {
        make_model(&m, DEFAULT);
        cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetArrayItem(m.sources, 0), "bytes", cJSON_CreateNumber(-1));
        EXPECT_MODEL_FAIL("sources[0].bytes negative", &m, "sources[0].bytes", NULL);
        free_model(&m);
        make_model(&m, DEFAULT);
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetArrayItem(m.sources, 0), "sha256");
        EXPECT_MODEL_FAIL("sources[0].sha256 missing", &m, "sources[0].sha256", NULL);
        free_model(&m);
    }
    meta_case("converter.name_map a list", CO, "name_map", jraw("[]"), "converter.name_map", NULL);
    meta_case("converter.tool missing", CO, "tool", NULL, "converter.tool", NULL);

    // tensor entries
    const char *EMB = "model.decoder.emb_layer.weight", *MASK = "model.forbid_rep_mask";
    struct {
        const char *label, *key, *json, *s1;
    } ec[] = {
        {"dtype F64", "dtype", "\"F64\"", "dtype \"F64\" is not one of"},
        {"dtype lower-case", "dtype", "\"f16\"", "dtype \"f16\""},
        {"dtype a number", "dtype", "4", "dtype must be a string"},
        {"shape not a list", "shape", "13", "shape must be a list"},
        {"shape of 9 dims", "shape", "[1,1,1,1,1,1,1,13,8]", "9 dimensions"},
        {"shape negative", "shape", "[-13, -8]", "shape[0] = -13"},
        {"shape fractional", "shape", "[13, 8.5]", "shape[1] = 8.5"},
        {"shape > 2^40", "shape", "[2199023255552, 1]", "shape[0]"},
        {"shape a string element", "shape", "[\"13\", 8]", "shape[0]"},
        {"element count overflows", "shape", "[1099511627776, 1099511627776]", "too many elements"},
        {"byte size overflows", "shape", "[2147483648, 4294967296]", "too large for dtype F16"},
        {"shape disagrees with offsets", "shape", "[13, 7]", "hold"},
        {"zero dim, nonzero bytes", "shape", "[1099511627776, 1099511627776, 0]", "needs 0 bytes"},
        {"data_offsets a string", "data_offsets", "\"0-100\"", "data_offsets must be two"},
        {"data_offsets one integer", "data_offsets", "[0]", "data_offsets must be two"},
        {"data_offsets three integers", "data_offsets", "[0, 208, 416]", "data_offsets must be two"},
        {"data_offsets negative", "data_offsets", "[-208, 0]", "data_offsets must be two"},
        {"data_offsets fractional", "data_offsets", "[0.5, 208.5]", "data_offsets must be two"},
        {"data_offsets begin > end", "data_offsets", "[208, 0]", "end before they begin"},
        {"data_offsets past the data", "data_offsets", "[1000000000, 1000000208]", "past the end of the data section"},
        {"data_offsets 2^63", "data_offsets", "[9223372036854775808, 9223372036854775808]", "data_offsets must be two"},
    };
    for (size_t i = 0; i < sizeof ec / sizeof *ec; i++) {
        make_model(&m, DEFAULT);
        parts p = make_parts(&m, 1);
        set_entry(&p, EMB, ec[i].key, jraw(ec[i].json));
        EXPECT_PARTS_FAIL(ec[i].label, &p, EMB, ec[i].s1);
        free_parts(&p);
        free_model(&m);
    }
    {
        make_model(&m, DEFAULT);
        parts p = make_parts(&m, 1);
        cJSON_DeleteItemFromObjectCaseSensitive(entry(&p, EMB), "dtype");
        EXPECT_PARTS_FAIL("dtype missing", &p, EMB, "the entry has no dtype");
        free_parts(&p);
        p = make_parts(&m, 1);
        cJSON_DeleteItemFromObjectCaseSensitive(entry(&p, EMB), "shape");
        EXPECT_PARTS_FAIL("shape missing", &p, EMB, "the entry has no shape");
        free_parts(&p);
        p = make_parts(&m, 1);
        cJSON_DeleteItemFromObjectCaseSensitive(entry(&p, EMB), "data_offsets");
        EXPECT_PARTS_FAIL("data_offsets missing", &p, EMB, "the entry has no data_offsets");
        free_parts(&p);
        p = make_parts(&m, 1);
        cJSON_AddItemToObject(p.hdr, "foo", cJSON_CreateNumber(5));
        EXPECT_PARTS_FAIL("entry not an object", &p, "tensor foo", "must be a JSON object");
        free_parts(&p);
        p = make_parts(&m, 1);
        cJSON_AddItemToObject(entry(&p, EMB), "dtype", cJSON_CreateString("F16"));
        EXPECT_PARTS_FAIL("entry with dtype twice", &p, EMB, "\"dtype\" twice");
        free_parts(&p);
        // duplicate name: a second entry (cJSON keeps both) describing the same bytes
        p = make_parts(&m, 1);
        cJSON_AddItemToObject(p.hdr, EMB, cJSON_Duplicate(entry(&p, EMB), 1));
        EXPECT_PARTS_FAIL("duplicate tensor name", &p, "duplicate tensor name", EMB);
        free_parts(&p);
        // storage layout: the BOOL mask is the last tensor in storage order
        p = make_parts(&m, 1);
        cJSON *of = cJSON_GetObjectItemCaseSensitive(entry(&p, MASK), "data_offsets");
        double b0 = cJSON_GetArrayItem(of, 0)->valuedouble, e0 = cJSON_GetArrayItem(of, 1)->valuedouble;
        cJSON_SetNumberValue(cJSON_GetArrayItem(of, 0), b0 - 4);
        cJSON_SetNumberValue(cJSON_GetArrayItem(of, 1), e0 - 4);
        EXPECT_PARTS_FAIL("overlapping tensors", &p, MASK, "overlaps");
        cJSON_SetNumberValue(cJSON_GetArrayItem(of, 0), b0 + 4);
        cJSON_SetNumberValue(cJSON_GetArrayItem(of, 1), e0 + 4);
        memset(p.data + p.dlen, 0, 4);
        p.dlen += 4;
        EXPECT_PARTS_FAIL("gap between tensors", &p, "4 bytes of the data section", "gap before model.forbid_rep_mask");
        cJSON_SetNumberValue(cJSON_GetArrayItem(of, 0), b0);
        cJSON_SetNumberValue(cJSON_GetArrayItem(of, 1), e0);
        EXPECT_PARTS_FAIL("trailing bytes", &p, "4 trailing bytes", NULL);
        p.dlen -= 5;
        EXPECT_PARTS_FAIL("data section one byte short", &p, MASK, "past the end of the data section");
        // first tensor not at offset 0: a gap at the start
        for (cJSON *e = p.hdr->child; e; e = e->next) {
            cJSON *o = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
            if (!o) continue;
            cJSON_SetNumberValue(cJSON_GetArrayItem(o, 0), cJSON_GetArrayItem(o, 0)->valuedouble + 8);
            cJSON_SetNumberValue(cJSON_GetArrayItem(o, 1), cJSON_GetArrayItem(o, 1)->valuedouble + 8);
        }
        p.dlen += 1 + 8;
        EXPECT_PARTS_FAIL("gap at the start of the data", &p, "8 bytes of the data section at offset 0", NULL);
        free_parts(&p);
        free_model(&m);
    }
    // a zero-size tensor is fine for the container (the table then calls it unknown)
    make_model(&m, DEFAULT);
    add_t(&m, "F32", 2, S(0, 4), "zero.size");
    EXPECT_MODEL_FAIL("zero-size tensor", &m, "1 problem with", "unknown tensor zero.size");
    free_model(&m);
    // API misuse and unreadable paths
    ac_model_file *mf = (ac_model_file *)&checks;
    T(ac_model_file_open(NULL, &mf) == AC_ERR_INVALID_ARG && mf == NULL, "open(NULL)");
    T(ac_model_file_open("x", NULL) == AC_ERR_INVALID_ARG, "open(out NULL)");
    T(ac_model_file_open_memory(NULL, 10, NAME, &mf) == AC_ERR_INVALID_ARG && strstr(ac_last_error(), NAME),
      "open_memory(NULL, 10): %s", ac_last_error());
    T(ac_model_file_open_memory(zero, 8, NAME, NULL) == AC_ERR_INVALID_ARG, "open_memory(out NULL)");
    T(ac_model_file_open_memory(NULL, 0, NAME, &mf) == AC_ERR_FORMAT && strstr(ac_last_error(), "0 bytes"),
      "open_memory(NULL, 0): %s", ac_last_error());
    char path[512];
    snprintf(path, sizeof path, "%s/missing.safetensors", g_tmp);
    T(ac_model_file_open(path, &mf) == AC_ERR_IO && mf == NULL && strstr(ac_last_error(), path) &&
          strstr(ac_last_error(), "No such file"),
      "missing file: %s", ac_last_error());
    T(ac_model_file_open(g_tmp, &mf) == AC_ERR_IO && strstr(ac_last_error(), "directory"), "directory: %s",
      ac_last_error());
    snprintf(path, sizeof path, "%s/empty.safetensors", g_tmp);
    write_bytes(path, "", 0);
    T(ac_model_file_open(path, &mf) == AC_ERR_FORMAT && strstr(ac_last_error(), path) &&
          strstr(ac_last_error(), "0 bytes"),
      "empty file on disk: %s", ac_last_error());
    snprintf(path, sizeof path, "%s/short.safetensors", g_tmp);
    write_bytes(path, "\x10\0\0\0\0", 5);
    T(ac_model_file_open(path, &mf) == AC_ERR_FORMAT && strstr(ac_last_error(), "5 bytes"), "5-byte file: %s",
      ac_last_error());
    snprintf(path, sizeof path, "%s/plain.safetensors", g_tmp);
    write_bytes(path, "\x10\0\0\0\0\0\0\0{\"a\": 1}        ", 24);
    T(ac_model_file_open(path, &mf) == AC_ERR_FORMAT && strstr(ac_last_error(), path) &&
          strstr(ac_last_error(), "no __metadata__"),
      "plain JSON on disk: %s", ac_last_error());
    printf("  %d checks on container, metadata and tensor-entry corruptions, API misuse and unreadable paths\n",
           checks - count_cases_before);
}

// ---------------------------------------------------------------------------------------------------------
// (c) the cnext-trans table
// ---------------------------------------------------------------------------------------------------------
static void test_table(void) {
    printf("(c) cnext-trans tensor table:\n");
    int c0 = checks;
    model m;
    // the four kinds of problem in one file, one message
    make_model(&m, DEFAULT);
    drop_t(&m, "model.decoder.classifier.bias");
    add_t(&m, "F32", 1, S(3), "foo.bar");
    retype(&m, "model.decoder.emb_layer.weight", NULL, 2, S(12, 8));
    retype(&m, "model.forbid_rep_mask", "F32", 1, S(V));
    EXPECT_MODEL_FAIL("missing+unknown+misshaped+dtype", &m, "4 problems", "missing model.decoder.classifier.bias",
                      "unknown tensor foo.bar", "misshaped model.decoder.emb_layer.weight: [12, 8] (expected [13, 8])",
                      "model.forbid_rep_mask has dtype F32 (expected BOOL)");
    {
        size_t len;
        unsigned char *b = make_file(&m, &len);
        ac_model_file *mf;
        ac_model_file_open_memory(b, len, NAME, &mf);
        printf("  one message for four problems: %s\n", ac_last_error());
        free(b);
    }
    free_model(&m);
    // the upstream safetensors' old ConvNeXt name: reported, not guessed
    make_model(&m, DEFAULT);
    rename_t(&m, E ".stages.0.0.scale_layer", E ".stages.0.0.gamma");
    EXPECT_MODEL_FAIL("gamma instead of scale_layer", &m, "2 problems", "unknown tensor " E ".stages.0.0.gamma",
                      "missing " E ".stages.0.0.scale_layer", "renames it");
    free_model(&m);
    // many problems: listed up to the cap, then counted; the message still ends with its hint
    make_model(&m, DEFAULT);
    for (int i = 0; i < m.n; i++)
        if (!strncmp(m.t[i].name, "model.decoder.layers.1.", 23)) m.t[i].name[20] = 'X';  // "layerX.1..."
    {
        size_t len;
        unsigned char *b = make_file(&m, &len);
        ac_model_file *mf;
        ac_status st = ac_model_file_open_memory(b, len, NAME, &mf);
        const char *msg = ac_last_error();
        size_t ml = strlen(msg);
        T(st == AC_ERR_FORMAT && strstr(msg, "36 problems") && strstr(msg, "more") && ml < 1023 && msg[ml - 1] == ')' &&
              strstr(msg, "hint:"),
          "36 problems: %s", msg);
        int listed = 0;
        for (const char *p = msg; (p = strstr(p, "; ")); p++) listed++;
        T(listed >= 5 && listed <= 20, "listed %d problems", listed + 1);
        T(strstr(msg, "unknown tensor model.decoder.layersX1.") != NULL &&
              strstr(msg, "missing model.decoder.layers.1.") != NULL,
          "both kinds listed: %s", msg);
        printf("  36 problems -> %zu-character message listing %d, then the count of the rest\n", ml, listed + 1);
        if (g_verbose) printf("    %s\n", msg);
        free(b);
    }
    free_model(&m);
    // a name with control characters is reported with them made harmless
    make_model(&m, DEFAULT);
    add_t(&m, "F32", 1, S(1), "evil\x1b[2J\n");
    EXPECT_MODEL_FAIL("control characters in a name", &m, "unknown tensor evil?[2J?", NULL);
    free_model(&m);
    // task tensor rules
    make_model(&m, DEFAULT);
    drop_t(&m, "model.task_id_to_token_id");
    EXPECT_MODEL_FAIL("task tensor missing", &m, "missing model.task_id_to_token_id", NULL);
    free_model(&m);
    make_model(&m, (model_opts){0, 1, 1});
    add_t(&m, "I64", 1, S(2), "model.task_id_to_token_id");
    EXPECT_MODEL_FAIL("task tensor without task_names", &m, "unexpected tensor model.task_id_to_token_id",
                      "task_names is empty");
    free_model(&m);
    make_model(&m, DEFAULT);
    retype(&m, "model.task_id_to_token_id", NULL, 1, S(3));
    EXPECT_MODEL_FAIL("task tensor of 3 for 2 tasks", &m, "misshaped model.task_id_to_token_id: [3] (expected [2])",
                      NULL);
    free_model(&m);
    make_model(&m, DEFAULT);
    retype(&m, "model.task_id_to_token_id", "F32", 1, S(2));
    EXPECT_MODEL_FAIL("task tensor F32", &m, "model.task_id_to_token_id has dtype F32 (expected I64)", NULL);
    free_model(&m);
    make_model(&m, DEFAULT);
    {
        int64_t ids[2] = {10, 13};
        memcpy(find_t(&m, "model.task_id_to_token_id")->data, ids, sizeof ids);
    }
    EXPECT_MODEL_FAIL("task token id = vocab_size", &m, "model.task_id_to_token_id[1] = 13", "audiocaps");
    free_model(&m);
    make_model(&m, DEFAULT);
    {
        int64_t ids[2] = {-1, 11};
        memcpy(find_t(&m, "model.task_id_to_token_id")->data, ids, sizeof ids);
    }
    EXPECT_MODEL_FAIL("task token id negative", &m, "model.task_id_to_token_id[0] = -1", NULL);
    free_model(&m);
    make_model(&m, DEFAULT);
    find_t(&m, "model.forbid_rep_mask")->data[7] = 2;
    EXPECT_MODEL_FAIL("BOOL byte 2", &m, "model.forbid_rep_mask[7] holds byte 2", NULL);
    free_model(&m);
    // optional tensors are still checked when present
    make_model(&m, DEFAULT);
    retype(&m, E ".head_audioset.weight", NULL, 2, S(526, C3));
    EXPECT_MODEL_FAIL("optional tensor misshaped", &m,
                      "misshaped " E ".head_audioset.weight: [526, 8] (expected [527, 8])", NULL);
    free_model(&m);
    make_model(&m, DEFAULT);
    retype(&m, E ".bn0.num_batches_tracked", "F32", 0, NULL);
    EXPECT_MODEL_FAIL("num_batches_tracked F32", &m, E ".bn0.num_batches_tracked has dtype F32 (expected I64)", NULL);
    free_model(&m);
    make_model(&m, DEFAULT);
    retype(&m, E ".stages.2.0.scale_layer", "I64", 1, S(C2));
    EXPECT_MODEL_FAIL("float tensor stored as I64", &m, "scale_layer has dtype I64 (expected F32, F16 or BF16)", NULL);
    free_model(&m);
    make_model(&m, DEFAULT);
    retype(&m, "model.decoder.pos_encoding.pos_embedding", NULL, 2, S(MAXPOS, D));
    EXPECT_MODEL_FAIL("pos_embedding without its 1", &m, "[32, 8] (expected [32, 1, 8])", NULL);
    free_model(&m);
    // the table follows the hparams: one more token in hparams and itos misshapes every V-sized tensor
    make_model(&m, DEFAULT);
    jset(m.hparams, "vocab_size", cJSON_CreateNumber(V + 1));
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(m.tokenizer, "itos"), cJSON_CreateString("cat"));
    EXPECT_MODEL_FAIL("vocab_size 14 with 13-token tensors", &m, "4 problems",
                      "emb_layer.weight: [13, 8] (expected [14, 8])", "forbid_rep_mask: [13] (expected [14])");
    free_model(&m);
    make_model(&m, DEFAULT);
    jset(m.hparams, "encoder.depths", jraw("[1, 2, 1, 1]"));
    EXPECT_MODEL_FAIL("depths [1, 2, 1, 1] with one block", &m, "9 problems", "missing " E ".stages.1.1.dwconv.weight",
                      NULL);
    free_model(&m);
    make_model(&m, DEFAULT);
    jset(m.hparams, "encoder.stem_kernel", jraw("[3, 3]"));
    EXPECT_MODEL_FAIL("stem kernel from hparams", &m,
                      "downsample_layers.0.0.weight: [4, 1, 4, 4] (expected [4, 1, 3, 3])", NULL);
    free_model(&m);
    printf("  %d checks: combined report, gamma rename, capped list, task/BOOL values, optional tensors, "
           "hparams-driven shapes\n",
           checks - c0);
}

// ---------------------------------------------------------------------------------------------------------
// (d) robustness
// ---------------------------------------------------------------------------------------------------------
static FILE *g_null;

// Opens an exact-size copy; on success uses everything an engine would use. Returns 1 when it opened.
static int try_open(const unsigned char *src, size_t len, int *bad) {
    unsigned char *copy = malloc(len ? len : 1);
    if (len) memcpy(copy, src, len);
    ac_model_file *mf = (ac_model_file *)&checks;
    ac_status st = ac_model_file_open_memory(copy, len, "fuzz.safetensors", &mf);
    int ok = st == AC_OK;
    if (ok) {
        float *scratch = NULL;
        for (int i = 0; i < ac_model_file_n_tensors(mf); i++) {
            const ac_tensor *t;
            ac_model_file_tensor_at(mf, i, &t);
            if (t->dtype == AC_DTYPE_I64 || t->dtype == AC_DTYPE_BOOL) continue;
            scratch = realloc(scratch, sizeof(float) * (size_t)t->numel + 1);
            if (ac_tensor_to_f32(t, scratch) != AC_OK) (*bad)++;
        }
        free(scratch);
        ac_model_file_print_info(mf, g_null, 1);
        ac_model_file_close(mf);
    } else if (st != AC_ERR_FORMAT || mf != NULL || strncmp(ac_last_error(), "fuzz.safetensors: ", 18) != 0) {
        (*bad)++;
        if (*bad < 5) fprintf(stderr, "  unexpected failure: %s: %s\n", ac_status_name(st), ac_last_error());
    }
    free(copy);
    return ok;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void test_robustness(void) {
    printf("(d) robustness:\n");
    g_null = fopen("/dev/null", "w");
    model m;
    make_model(&m, DEFAULT);
    parts p = make_parts(&m, 1);
    char *htext = cJSON_PrintUnformatted(p.hdr);
    size_t len;
    unsigned char *vb = assemble(&p, 1, &len);
    uint64_t N = header_len(vb);
    double t0 = now();
    // every prefix through the header and 64 bytes beyond, then 400 lengths spread over the data
    int bad = 0, n = 0, opened = 0;
    for (size_t k = 0; k < len; k++) {
        if (k > 8 + N + 64 && (k - (8 + N)) % ((len - 8 - N) / 400 + 1) != 0 && k < len - 16) continue;
        opened += try_open(vb, k, &bad);
        n++;
    }
    T(bad == 0 && opened == 0, "truncation: %d unexpected results, %d truncated files opened", bad, opened);
    printf("  %d truncated files (every length up to %llu, then across the data): all rejected (%.2f s)\n", n,
           (unsigned long long)(8 + N + 64), now() - t0);
    t0 = now();
    // the header JSON cut short (N adjusted, data kept): every length through __metadata__ (where the nested
    // JSON strings are), then every 11th through the repetitive tensor entries, and the last 256
    size_t hl = strlen(htext);
    char first[160];
    snprintf(first, sizeof first, "\"%s\":{", m.t[p.order[0]].name);
    size_t meta_end = (size_t)(strstr(htext, first) - htext);
    int n2 = 0, opened2 = 0;
    bad = 0;
    for (size_t k = 0; k <= hl; k++) {
        if (k > meta_end && k + 256 < hl && (k - meta_end) % 11) continue;
        size_t l2;
        unsigned char *b = assemble_raw(htext, k, 0, p.data, p.dlen, &l2);
        opened2 += try_open(b, l2, &bad);
        free(b);
        n2++;
    }
    T(bad == 0 && opened2 == 1, "header prefixes: %d unexpected results, %d opened (want 1: the whole header)", bad,
      opened2);
    printf("  %d header-JSON prefixes (all %zu through __metadata__): all rejected but the whole header (%.2f s)\n", n2,
           meta_end, now() - t0);
    t0 = now();
    // 2000 random corruptions (AC_FUZZ_ITERS=n for a longer run): one byte replaced or one bit flipped, in the
    // 8-byte length (1 in 8) or the header
    const char *iters_env = getenv("AC_FUZZ_ITERS");
    int iters = iters_env && atoi(iters_env) > 0 ? atoi(iters_env) : 2000;
    rng_state = 0x5eed1234abcdull;
    int errors = 0, valid = 0;
    bad = 0;
    unsigned char *c = malloc(len);
    for (int i = 0; i < iters; i++) {
        memcpy(c, vb, len);
        size_t pos = (rnd() % 8 == 0) ? rnd() % 8 : 8 + rnd() % N;
        if (i & 1) c[pos] ^= (unsigned char)(1u << (rnd() % 8));
        else {
            unsigned char v;
            do v = (unsigned char)rnd();
            while (v == vb[pos]);
            c[pos] = v;
        }
        if (try_open(c, len, &bad)) valid++;
        else errors++;
    }
    free(c);
    T(bad == 0, "random corruptions: %d unexpected results", bad);
    printf("  %d single-byte corruptions: %d rejected, %d still valid (e.g. a changed token string) (%.2f s)\n", iters,
           errors, valid, now() - t0);
    free(vb);
    free(htext);
    free_parts(&p);
    free_model(&m);
    fclose(g_null);
}

int main(void) {
    g_verbose = getenv("AC_VERBOSE") != NULL;
    snprintf(g_tmp, sizeof g_tmp, "test_model_file_tmp_XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    printf("(a) F16/BF16 conversion:\n");
    test_halves();
    test_valid();
    test_container();
    test_table();
    test_robustness();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_tmp);
    return test_finish("test_model_file", checks);
}
