// Model-file loader: maps a safetensors container and validates it against weights/FORMAT.md (format_version 1,
// architecture cnext-trans) before anything reads a tensor:
//   container  header length bounds, UTF-8 JSON object, every tensor's dtype/shape/data_offsets, no duplicate
//              names, and tensors tiling the data section exactly (no overlap, gap or trailing byte);
//   metadata   format/format_version/architecture, then hparams/frontend/decoding/tokenizer/sources/converter
//              with every key's presence, type and range (token ids < vocab_size, len(itos) = vocab_size, ...);
//   tensors    the cnext-trans table computed from the parsed hparams: every missing, unknown, misshaped or
//              wrongly typed tensor is collected and reported in one message; task token ids and the BOOL
//              mask's bytes are read and checked.
// Nothing here trusts a number from the file before checking it, so any input gives an error or a valid object.
#include "model_file.h"
#include "bf16.h"
#include "status.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this loader copies it verbatim and needs a little-endian host"
#endif

#define HINT "hint: re-convert with tools/convert.py"
#define MAX_HEADER (100ull << 20)      // FORMAT.md: N <= 100 MiB
#define MAX_DIM ((int64_t)1 << 40)     // larger dimensions are corruption, not models
#define MAX_OFFSET 9007199254740992.0  // 2^53: beyond it a JSON number no longer holds an exact integer
#define MAX_BLOCKS 256                 // per encoder stage / decoder layers: keeps the table check bounded
#define MAX_LISTED 20                  // problems named in one message

struct ac_model_file {
    char *name;
    const unsigned char *base;  // whole file
    size_t len;
    int mapped;  // base came from mmap (else the caller's buffer)
    uint64_t header_len;
    const unsigned char *data;  // data section
    uint64_t data_len;
    cJSON *header;  // owns the tensor names and the raw metadata strings
    const cJSON *meta;
    cJSON *j_hparams, *j_frontend, *j_decoding, *j_tokenizer, *j_sources, *j_converter;
    int n_tensors;
    ac_tensor *tensors;  // storage order
    int *by_name;        // indexes into tensors, sorted by name
    const char **itos;
    ac_model_source *sources;
    char converter_version[48];
    ac_model_config cfg;
};

// ---------------------------------------------------------------------------------------------------------
// small helpers
// ---------------------------------------------------------------------------------------------------------
const char *ac_dtype_name(ac_dtype d) {
    switch (d) {
    case AC_DTYPE_F32: return "F32";
    case AC_DTYPE_F16: return "F16";
    case AC_DTYPE_BF16: return "BF16";
    case AC_DTYPE_I64: return "I64";
    case AC_DTYPE_BOOL: return "BOOL";
    }
    return "?";
}

size_t ac_dtype_size(ac_dtype d) {
    switch (d) {
    case AC_DTYPE_F32: return 4;
    case AC_DTYPE_F16: return 2;
    case AC_DTYPE_BF16: return 2;
    case AC_DTYPE_I64: return 8;
    case AC_DTYPE_BOOL: return 1;
    }
    return 0;
}

const char *ac_activation_name(ac_activation a) { return a == AC_ACT_GELU ? "gelu" : "relu"; }

const char *ac_frame_len_rule_name(ac_frame_len_rule r) {
    return r == AC_FRAME_LEN_DCASE2024 ? "dcase2024" : "conette";
}

// Names and strings in messages come from the file: control characters become '?' so that a hostile file cannot
// drive the terminal that shows the message.
static void sanitize(char *s) {
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f) *p = '?';
}

// A format error: "<file>: <reason> (<hint>)".
static ac_status bad_h(const ac_model_file *mf, const char *hint, const char *fmt, ...) AC_PRINTF(3, 4);
static ac_status bad_h(const ac_model_file *mf, const char *hint, const char *fmt, ...) {
    char reason[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    sanitize(reason);
    return ac_fail(AC_ERR_FORMAT, "%s: %s (%s)", mf->name, reason, hint);
}

#define bad(mf, ...) bad_h(mf, HINT, __VA_ARGS__)

static void fmt_shape(const int64_t *shape, int ndim, char *buf, size_t cap) {
    size_t pos = 0;
    pos += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && pos < cap; i++)
        pos += (size_t)snprintf(buf + pos, cap - pos, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (pos < cap) snprintf(buf + pos, cap - pos, "]");
}

// What a JSON value is, for "must be X, got Y" messages.
static const char *jdesc(const cJSON *j, char *buf, size_t cap) {
    if (!j) return "nothing";
    if (cJSON_IsNumber(j)) snprintf(buf, cap, "%.17g", j->valuedouble);
    else if (cJSON_IsString(j))
        snprintf(buf, cap, "\"%.40s%s\"", j->valuestring, strlen(j->valuestring) > 40 ? "..." : "");
    else if (cJSON_IsBool(j)) snprintf(buf, cap, "%s", cJSON_IsTrue(j) ? "true" : "false");
    else if (cJSON_IsNull(j)) snprintf(buf, cap, "null");
    else if (cJSON_IsArray(j)) snprintf(buf, cap, "an array");
    else if (cJSON_IsObject(j)) snprintf(buf, cap, "an object");
    else snprintf(buf, cap, "an invalid value");
    return buf;
}

// Doubles are range-checked before the cast: converting an out-of-range double is undefined behaviour.
static int j_int(const cJSON *j, double lo, double hi, int64_t *v) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= lo && d <= hi) || d != floor(d)) return 0;
    *v = (int64_t)d;
    return 1;
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

// First key that appears twice in `obj` (cJSON keeps both; a lookup would silently see only the first), or NULL.
// *nomem is set when the scratch array cannot be allocated.
static const char *dup_key(const cJSON *obj, int *nomem) {
    int n = 0;
    for (const cJSON *c = obj->child; c; c = c->next) n++;
    if (n < 2) return NULL;
    const char **keys = malloc(sizeof(char *) * (size_t)n);
    if (!keys) {
        *nomem = 1;
        return NULL;
    }
    int k = 0;
    for (const cJSON *c = obj->child; c; c = c->next) keys[k++] = c->string ? c->string : "";
    qsort(keys, (size_t)n, sizeof *keys, cmp_str_ptr);
    const char *d = NULL;
    for (int i = 1; i < n && !d; i++)
        if (!strcmp(keys[i - 1], keys[i])) d = keys[i];
    free(keys);
    return d;
}

// dup_key over every object nested in j (depth bounded by cJSON's nesting limit).
static const char *dup_key_deep(const cJSON *j, int *nomem) {
    if (cJSON_IsObject(j)) {
        const char *d = dup_key(j, nomem);
        if (d || *nomem) return d;
    }
    if (cJSON_IsObject(j) || cJSON_IsArray(j))
        for (const cJSON *c = j->child; c; c = c->next) {
            const char *d = dup_key_deep(c, nomem);
            if (d || *nomem) return d;
        }
    return NULL;
}

// Index of the first byte that is not part of valid UTF-8 (RFC 3629: no overlongs, surrogates or > U+10FFFF),
// or n when all of it is valid.
static size_t utf8_invalid_at(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xbf;  // allowed range of the first continuation byte
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) len = 2;
        else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        } else return i;
        if (n - i < len) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80) return i;
        i += len;
    }
    return n;
}

// ---------------------------------------------------------------------------------------------------------
// metadata JSON: typed getters that name the full key path in their errors
// ---------------------------------------------------------------------------------------------------------
static ac_status need(const ac_model_file *mf, const cJSON *obj, const char *where, const char *key,
                      const cJSON **out) {
    *out = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!*out) return bad(mf, "metadata %s.%s is missing", where, key);
    return AC_OK;
}

static ac_status get_int(const ac_model_file *mf, const cJSON *obj, const char *where, const char *key, int64_t lo,
                         int64_t hi, int *out) {
    const cJSON *j;
    int64_t v;
    char d[64];
    ac_status st = need(mf, obj, where, key, &j);
    if (st) return st;
    if (!j_int(j, (double)lo, (double)hi, &v))
        return bad(mf, "metadata %s.%s must be an integer in [%lld, %lld], got %s", where, key, (long long)lo,
                   (long long)hi, jdesc(j, d, sizeof d));
    *out = (int)v;
    return AC_OK;
}

static ac_status get_int_array(const ac_model_file *mf, const cJSON *obj, const char *where, const char *key, int n,
                               int64_t lo, int64_t hi, int *out) {
    const cJSON *j;
    char d[64];
    ac_status st = need(mf, obj, where, key, &j);
    if (st) return st;
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != n)
        return bad(mf, "metadata %s.%s must be a list of %d integers, got %s", where, key, n,
                   cJSON_IsArray(j) ? "a list of another length" : jdesc(j, d, sizeof d));
    int i = 0;
    for (const cJSON *e = j->child; e; e = e->next, i++) {
        int64_t v;
        if (!j_int(e, (double)lo, (double)hi, &v))
            return bad(mf, "metadata %s.%s[%d] must be an integer in [%lld, %lld], got %s", where, key, i,
                       (long long)lo, (long long)hi, jdesc(e, d, sizeof d));
        out[i] = (int)v;
    }
    return AC_OK;
}

// A finite number; `positive` also demands > 0.
static ac_status get_num(const ac_model_file *mf, const cJSON *obj, const char *where, const char *key, int positive,
                         double *out) {
    const cJSON *j;
    char d[64];
    ac_status st = need(mf, obj, where, key, &j);
    if (st) return st;
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble) || (positive && !(j->valuedouble > 0)))
        return bad(mf, "metadata %s.%s must be a %snumber, got %s", where, key, positive ? "positive " : "",
                   jdesc(j, d, sizeof d));
    *out = j->valuedouble;
    return AC_OK;
}

static ac_status get_bool(const ac_model_file *mf, const cJSON *obj, const char *where, const char *key, int *out) {
    const cJSON *j;
    char d[64];
    ac_status st = need(mf, obj, where, key, &j);
    if (st) return st;
    if (!cJSON_IsBool(j))
        return bad(mf, "metadata %s.%s must be true or false, got %s", where, key, jdesc(j, d, sizeof d));
    *out = cJSON_IsTrue(j);
    return AC_OK;
}

static ac_status get_str(const ac_model_file *mf, const cJSON *obj, const char *where, const char *key,
                         const char **out) {
    const cJSON *j;
    char d[64];
    ac_status st = need(mf, obj, where, key, &j);
    if (st) return st;
    if (!cJSON_IsString(j))
        return bad(mf, "metadata %s.%s must be a string, got %s", where, key, jdesc(j, d, sizeof d));
    *out = j->valuestring;
    return AC_OK;
}

// A string that must be one of `names`; *out receives its index.
static ac_status get_enum(const ac_model_file *mf, const cJSON *obj, const char *where, const char *key,
                          const char *const *names, int n, int *out) {
    const char *s;
    ac_status st = get_str(mf, obj, where, key, &s);
    if (st) return st;
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) {
            *out = i;
            return AC_OK;
        }
    char list[256] = "";
    size_t pos = 0;
    for (int i = 0; i < n && pos < sizeof list; i++)
        pos += (size_t)snprintf(list + pos, sizeof list - pos, "%s%s", i ? ", " : "", names[i]);
    return bad(mf, "metadata %s.%s is \"%.60s\", not one of %s", where, key, s, list);
}

static ac_status get_obj(const ac_model_file *mf, const cJSON *obj, const char *where, const char *key,
                         const cJSON **out) {
    char d[64];
    ac_status st = need(mf, obj, where, key, out);
    if (st) return st;
    if (!cJSON_IsObject(*out))
        return bad(mf, "metadata %s.%s must be an object, got %s", where, key, jdesc(*out, d, sizeof d));
    return AC_OK;
}

// Parses the JSON text stored in __metadata__[key]; the result must be an object (or an array when want_array).
static ac_status meta_json(ac_model_file *mf, const char *key, int want_array, cJSON **out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(mf->meta, key);
    if (!j) return bad(mf, "__metadata__ has no %s", key);
    const char *end = NULL;
    *out = cJSON_ParseWithOpts(j->valuestring, &end, 1);
    if (!*out)
        return bad(mf, "__metadata__ %s is not valid JSON (error at character %lld)", key,
                   end ? (long long)(end - j->valuestring) : -1LL);
    char d[64];
    if (want_array ? !cJSON_IsArray(*out) : !cJSON_IsObject(*out))
        return bad(mf, "__metadata__ %s must be a JSON %s, got %s", key, want_array ? "list" : "object",
                   jdesc(*out, d, sizeof d));
    int nomem = 0;
    const char *dup = dup_key_deep(*out, &nomem);
    if (nomem) return ac_fail(AC_ERR_NOMEM, "%s: out of memory checking __metadata__ %s", mf->name, key);
    if (dup) return bad(mf, "__metadata__ %s has the key \"%.80s\" twice", key, dup);
    return AC_OK;
}

static const char *const ACT_NAMES[] = {"relu", "gelu"};
static const char *const RULE_NAMES[] = {"conette", "dcase2024"};
static const char *const TOKENIZER_KINDS[] = {"conette_aac", "hf_wordlevel"};
// The detokenizer steps FORMAT.md defines (conette aac_tokenizer.py:953-963; tokenizers' decode).
static const char *const POST_STEPS[] = {"clean_special_tokens",
                                         "clean_spaces_before_punctuation",
                                         "strip",
                                         "clean_double_spaces",
                                         "clean_hyphen_spaces",
                                         "lowercase",
                                         "skip_special_tokens",
                                         "join_spaces"};

static ac_status parse_hparams(ac_model_file *mf) {
    ac_model_config *c = &mf->cfg;
    const cJSON *h = mf->j_hparams, *enc, *proj, *dec;
    ac_status st;
    int v = 0;
    if ((st = get_obj(mf, h, "hparams", "encoder", &enc)) || (st = get_obj(mf, h, "hparams", "projection", &proj)) ||
        (st = get_obj(mf, h, "hparams", "decoder", &dec)))
        return st;
    const char *w = "hparams.encoder";
    if ((st = get_int(mf, enc, w, "in_chans", 1, 4096, &c->encoder.in_chans)) ||
        (st = get_int_array(mf, enc, w, "depths", 4, 1, MAX_BLOCKS, c->encoder.depths)) ||
        (st = get_int_array(mf, enc, w, "dims", 4, 1, 1 << 20, c->encoder.dims)) ||
        (st = get_int_array(mf, enc, w, "stem_kernel", 2, 1, 1024, c->encoder.stem_kernel)) ||
        (st = get_int_array(mf, enc, w, "stem_stride", 2, 1, 1024, c->encoder.stem_stride)) ||
        (st = get_int_array(mf, enc, w, "stem_padding", 2, 0, 1024, c->encoder.stem_padding)) ||
        (st = get_num(mf, enc, w, "ln_eps", 1, &c->encoder.ln_eps)) ||
        (st = get_enum(mf, enc, w, "frame_len_rule", RULE_NAMES, 2, &v)))
        return st;
    c->encoder.frame_len_rule = (ac_frame_len_rule)v;
    w = "hparams.projection";
    if ((st = get_int(mf, proj, w, "in_features", 1, 1 << 20, &c->projection.in_features)) ||
        (st = get_int(mf, proj, w, "out_features", 1, 1 << 20, &c->projection.out_features)) ||
        (st = get_enum(mf, proj, w, "activation", ACT_NAMES, 2, &v)))
        return st;
    c->projection.activation = (ac_activation)v;
    w = "hparams.decoder";
    if ((st = get_int(mf, dec, w, "d_model", 1, 1 << 20, &c->decoder.d_model)) ||
        (st = get_int(mf, dec, w, "nhead", 1, 1 << 20, &c->decoder.nhead)) ||
        (st = get_int(mf, dec, w, "num_layers", 1, MAX_BLOCKS, &c->decoder.num_layers)) ||
        (st = get_int(mf, dec, w, "dim_feedforward", 1, 1 << 24, &c->decoder.dim_feedforward)) ||
        (st = get_enum(mf, dec, w, "activation", ACT_NAMES, 2, &v)))
        return st;
    c->decoder.activation = (ac_activation)v;
    if ((st = get_bool(mf, dec, w, "norm_first", &c->decoder.norm_first)) ||
        (st = get_num(mf, dec, w, "ln_eps", 1, &c->decoder.ln_eps)) ||
        (st = get_num(mf, dec, w, "emb_scale", 1, &c->decoder.emb_scale)) ||
        (st = get_int(mf, dec, w, "max_positions", 1, 1 << 24, &c->decoder.max_positions)) ||
        (st = get_int(mf, h, "hparams", "vocab_size", 1, 1 << 24, &c->vocab_size)))
        return st;
    // The tensor table ties these together; saying so here is clearer than a list of misshaped tensors.
    if (c->decoder.d_model % c->decoder.nhead)
        return bad(mf, "metadata hparams.decoder.d_model %d is not a multiple of nhead %d", c->decoder.d_model,
                   c->decoder.nhead);
    if (c->projection.in_features != c->encoder.dims[3])
        return bad(mf, "metadata hparams.projection.in_features %d differs from hparams.encoder.dims[3] %d",
                   c->projection.in_features, c->encoder.dims[3]);
    if (c->projection.out_features != c->decoder.d_model)
        return bad(mf, "metadata hparams.projection.out_features %d differs from hparams.decoder.d_model %d",
                   c->projection.out_features, c->decoder.d_model);
    return AC_OK;
}

static ac_status parse_frontend(ac_model_file *mf) {
    ac_model_config *c = &mf->cfg;
    const cJSON *f = mf->j_frontend, *top;
    const char *w = "frontend";
    ac_status st;
    if ((st = get_int(mf, f, w, "sample_rate", 1, AC_MAX_SAMPLE_RATE, &c->frontend.sample_rate)) ||
        (st = get_int(mf, f, w, "n_fft", 2, 1 << 20, &c->frontend.n_fft)) ||
        (st = get_int(mf, f, w, "win_length", 1, c->frontend.n_fft, &c->frontend.win_length)) ||
        (st = get_int(mf, f, w, "hop", 1, 1 << 20, &c->frontend.hop)) ||
        (st = get_str(mf, f, w, "window", &c->frontend.window)) ||
        (st = get_bool(mf, f, w, "center", &c->frontend.center)) ||
        (st = get_str(mf, f, w, "pad_mode", &c->frontend.pad_mode)) ||
        (st = get_int(mf, f, w, "n_mels", 1, 1 << 16, &c->frontend.n_mels)) ||
        (st = get_num(mf, f, w, "fmin", 0, &c->frontend.fmin)) ||
        (st = get_num(mf, f, w, "fmax", 1, &c->frontend.fmax)) ||
        (st = get_str(mf, f, w, "mel_scale", &c->frontend.mel_scale)) ||
        (st = get_num(mf, f, w, "amin", 1, &c->frontend.amin)) ||
        (st = get_num(mf, f, w, "ref", 1, &c->frontend.ref)) || (st = need(mf, f, w, "top_db", &top)))
        return st;
    if (cJSON_IsNull(top)) c->frontend.has_top_db = 0;
    else if ((st = get_num(mf, f, w, "top_db", 1, &c->frontend.top_db))) return st;
    else c->frontend.has_top_db = 1;
    if ((st = get_num(mf, f, w, "bn_eps", 1, &c->frontend.bn_eps)) ||
        (st = get_str(mf, f, w, "resampler", &c->frontend.resampler)) ||
        (st = get_int(mf, f, w, "lowpass_filter_width", 1, 1 << 16, &c->frontend.lowpass_filter_width)) ||
        (st = get_num(mf, f, w, "rolloff", 1, &c->frontend.rolloff)) ||
        (st = get_str(mf, f, w, "channel_mix", &c->frontend.channel_mix)))
        return st;
    if (!(c->frontend.fmin < c->frontend.fmax))
        return bad(mf, "metadata frontend.fmin %g is not below frontend.fmax %g", c->frontend.fmin, c->frontend.fmax);
    return AC_OK;
}

static ac_status parse_decoding(ac_model_file *mf) {
    ac_model_config *c = &mf->cfg;
    const cJSON *dj = mf->j_decoding, *tn, *dt;
    const char *w = "decoding";
    int64_t V = c->vocab_size;
    char d[64];
    ac_status st;
    if ((st = get_int(mf, dj, w, "beam_size", 1, 1024, &c->decoding.beam_size)) ||
        (st = get_int(mf, dj, w, "min_pred_size", 0, 1 << 20, &c->decoding.min_pred_size)) ||
        (st = get_int(mf, dj, w, "max_pred_size", 1, 1 << 20, &c->decoding.max_pred_size)) ||
        (st = get_str(mf, dj, w, "forbid_rep_mode", &c->decoding.forbid_rep_mode)))
        return st;
    if (c->decoding.min_pred_size > c->decoding.max_pred_size)
        return bad(mf, "metadata decoding.min_pred_size %d exceeds decoding.max_pred_size %d",
                   c->decoding.min_pred_size, c->decoding.max_pred_size);
    const char *id_keys[4] = {"pad_id", "bos_id", "eos_id", "unk_id"};
    int *ids[4] = {&c->decoding.pad_id, &c->decoding.bos_id, &c->decoding.eos_id, &c->decoding.unk_id};
    for (int i = 0; i < 4; i++) {
        const cJSON *j;
        int64_t v;
        if ((st = need(mf, dj, w, id_keys[i], &j))) return st;
        if (!j_int(j, 0, (double)(V - 1), &v))
            return bad(mf, "metadata decoding.%s = %s is not a token id (vocab_size %lld)", id_keys[i],
                       jdesc(j, d, sizeof d), (long long)V);
        *ids[i] = (int)v;
    }
    if ((st = need(mf, dj, w, "task_names", &tn))) return st;
    if (!cJSON_IsArray(tn))
        return bad(mf, "metadata decoding.task_names must be a list of strings, got %s", jdesc(tn, d, sizeof d));
    int n = 0;
    for (const cJSON *e = tn->child; e; e = e->next, n++) {
        if (n == AC_MAX_TASKS) return bad(mf, "metadata decoding.task_names has more than %d tasks", AC_MAX_TASKS);
        if (!cJSON_IsString(e) || !e->valuestring[0] || strlen(e->valuestring) >= AC_TASK_NAME_CAP)
            return bad(mf, "metadata decoding.task_names[%d] must be a non-empty string of at most %d bytes, got %s", n,
                       AC_TASK_NAME_CAP - 1, jdesc(e, d, sizeof d));
        for (int k = 0; k < n; k++)
            if (!strcmp(c->decoding.task_names[k], e->valuestring))
                return bad(mf, "metadata decoding.task_names lists \"%s\" twice", e->valuestring);
        snprintf(c->decoding.task_names[n], AC_TASK_NAME_CAP, "%s", e->valuestring);
    }
    c->decoding.n_tasks = n;
    c->decoding.default_task = -1;
    if ((st = need(mf, dj, w, "default_task", &dt))) return st;
    if (!cJSON_IsNull(dt)) {
        if (!cJSON_IsString(dt))
            return bad(mf, "metadata decoding.default_task must be a task name or null, got %s",
                       jdesc(dt, d, sizeof d));
        for (int k = 0; k < n; k++)
            if (!strcmp(c->decoding.task_names[k], dt->valuestring)) c->decoding.default_task = k;
        if (c->decoding.default_task < 0)
            return bad(mf, "metadata decoding.default_task \"%.63s\" is not in decoding.task_names", dt->valuestring);
    }
    return AC_OK;
}

static ac_status parse_tokenizer(ac_model_file *mf) {
    ac_model_config *c = &mf->cfg;
    const cJSON *t = mf->j_tokenizer, *itos, *post;
    const char *w = "tokenizer";
    char d[64];
    int kind = 0;
    ac_status st;
    if ((st = get_enum(mf, t, w, "kind", TOKENIZER_KINDS, 2, &kind))) return st;
    c->tokenizer.kind = TOKENIZER_KINDS[kind];
    if ((st = need(mf, t, w, "itos", &itos))) return st;
    if (!cJSON_IsArray(itos))
        return bad(mf, "metadata tokenizer.itos must be a list of strings, got %s", jdesc(itos, d, sizeof d));
    int n = cJSON_GetArraySize(itos);
    if (n != c->vocab_size)
        return bad(mf, "metadata tokenizer.itos has %d entries but hparams.vocab_size is %d", n, c->vocab_size);
    mf->itos = malloc(sizeof(char *) * (size_t)n);
    if (!mf->itos) return ac_fail(AC_ERR_NOMEM, "%s: out of memory for %d tokens", mf->name, n);
    int i = 0;
    for (const cJSON *e = itos->child; e; e = e->next, i++) {
        if (!cJSON_IsString(e))
            return bad(mf, "metadata tokenizer.itos[%d] must be a string, got %s", i, jdesc(e, d, sizeof d));
        mf->itos[i] = e->valuestring;
    }
    c->tokenizer.n_itos = n;
    c->tokenizer.itos = mf->itos;
    if ((st = need(mf, t, w, "post_decoding", &post))) return st;
    if (!cJSON_IsArray(post))
        return bad(mf, "metadata tokenizer.post_decoding must be a list of step names, got %s",
                   jdesc(post, d, sizeof d));
    i = 0;
    for (const cJSON *e = post->child; e; e = e->next, i++) {
        if (i == AC_MAX_POST_STEPS)
            return bad(mf, "metadata tokenizer.post_decoding has more than %d steps", AC_MAX_POST_STEPS);
        int known = -1;
        for (size_t k = 0; cJSON_IsString(e) && k < sizeof POST_STEPS / sizeof *POST_STEPS; k++)
            if (!strcmp(e->valuestring, POST_STEPS[k])) known = (int)k;
        if (known < 0)
            return bad(mf, "metadata tokenizer.post_decoding[%d] = %s is not a known step", i, jdesc(e, d, sizeof d));
        c->tokenizer.post_decoding[i] = POST_STEPS[known];
    }
    c->tokenizer.n_post = i;
    return AC_OK;
}

static ac_status parse_provenance(ac_model_file *mf) {
    ac_model_config *c = &mf->cfg;
    char d[64], where[32];
    ac_status st;
    int n = cJSON_GetArraySize(mf->j_sources), i = 0;
    mf->sources = calloc((size_t)n + 1, sizeof *mf->sources);
    if (!mf->sources) return ac_fail(AC_ERR_NOMEM, "%s: out of memory", mf->name);
    for (const cJSON *e = mf->j_sources->child; e; e = e->next, i++) {
        snprintf(where, sizeof where, "sources[%d]", i);
        if (!cJSON_IsObject(e)) return bad(mf, "metadata %s must be an object, got %s", where, jdesc(e, d, sizeof d));
        const cJSON *b;
        int64_t v;
        if ((st = get_str(mf, e, where, "name", &mf->sources[i].name)) ||
            (st = get_str(mf, e, where, "sha256", &mf->sources[i].sha256)) || (st = need(mf, e, where, "bytes", &b)))
            return st;
        if (!j_int(b, 0, MAX_OFFSET, &v))
            return bad(mf, "metadata %s.bytes must be a non-negative integer, got %s", where, jdesc(b, d, sizeof d));
        mf->sources[i].bytes = v;
    }
    c->n_sources = n;
    c->sources = mf->sources;
    const cJSON *cv = mf->j_converter, *ver, *nm;
    if ((st = get_str(mf, cv, "converter", "tool", &c->converter_tool)) ||
        (st = need(mf, cv, "converter", "version", &ver)) || (st = get_obj(mf, cv, "converter", "name_map", &nm)))
        return st;
    // FORMAT.md does not fix the version's JSON type: a string or a number both read naturally.
    if (cJSON_IsString(ver)) snprintf(mf->converter_version, sizeof mf->converter_version, "%s", ver->valuestring);
    else if (cJSON_IsNumber(ver)) snprintf(mf->converter_version, sizeof mf->converter_version, "%g", ver->valuedouble);
    else return bad(mf, "metadata converter.version must be a string, got %s", jdesc(ver, d, sizeof d));
    c->converter_version = mf->converter_version;
    for (const cJSON *e = nm->child; e; e = e->next)
        if (!cJSON_IsString(e))
            return bad(mf, "metadata converter.name_map[\"%.80s\"] must be a string, got %s", e->string,
                       jdesc(e, d, sizeof d));
    return AC_OK;
}

static ac_status parse_metadata(ac_model_file *mf) {
    char d[64];
    ac_model_config *c = &mf->cfg;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(mf->header, "__metadata__");
    if (!m)
        return bad_h(mf, "hint: convert it with tools/convert.py",
                     "no __metadata__ in the header: a plain safetensors file, not an audiocap model file");
    if (!cJSON_IsObject(m)) return bad(mf, "__metadata__ must be a JSON object, got %s", jdesc(m, d, sizeof d));
    mf->meta = m;
    int nomem = 0;
    const char *dup = dup_key(m, &nomem);
    if (nomem) return ac_fail(AC_ERR_NOMEM, "%s: out of memory", mf->name);
    if (dup) return bad(mf, "__metadata__ has the key \"%.80s\" twice", dup);
    for (const cJSON *e = m->child; e; e = e->next)
        if (!cJSON_IsString(e))
            return bad(mf, "__metadata__ value %.80s must be a string (safetensors metadata is str -> str), got %s",
                       e->string, jdesc(e, d, sizeof d));
    const char *fmt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "format"));
    if (!fmt)
        return bad_h(mf, "hint: convert the checkpoint with tools/convert.py",
                     "__metadata__ has no format key: not an audiocap model file");
    if (strcmp(fmt, "audiocap") != 0)
        return bad_h(mf, "hint: convert the checkpoint with tools/convert.py",
                     "__metadata__ format is \"%.40s\", not \"audiocap\": not an audiocap model file", fmt);
    const char *ver = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "format_version"));
    if (!ver) return bad(mf, "__metadata__ has no format_version");
    if (strcmp(ver, "1") != 0)
        return bad_h(mf, "hint: re-convert the checkpoint with this audiocap's tools/convert.py",
                     "model file format version \"%.20s\", but this engine reads format version %d", ver,
                     AC_MODEL_FORMAT_VERSION);
    c->format_version = AC_MODEL_FORMAT_VERSION;
    const char *arch = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "architecture"));
    if (!arch) return bad(mf, "__metadata__ has no architecture");
    if (strcmp(arch, "cnext-trans") != 0)
        return bad_h(mf, "hint: this engine runs cnext-trans models only; check the file",
                     "unknown architecture \"%.60s\" (this engine knows cnext-trans)", arch);
    c->architecture = arch;
    c->model_name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "model_name"));
    if (!c->model_name) return bad(mf, "__metadata__ has no model_name");
    ac_status st;
    if ((st = meta_json(mf, "hparams", 0, &mf->j_hparams)) || (st = meta_json(mf, "frontend", 0, &mf->j_frontend)) ||
        (st = meta_json(mf, "decoding", 0, &mf->j_decoding)) ||
        (st = meta_json(mf, "tokenizer", 0, &mf->j_tokenizer)) || (st = meta_json(mf, "sources", 1, &mf->j_sources)) ||
        (st = meta_json(mf, "converter", 0, &mf->j_converter)))
        return st;
    if ((st = parse_hparams(mf)) || (st = parse_frontend(mf)) || (st = parse_decoding(mf)) ||
        (st = parse_tokenizer(mf)) || (st = parse_provenance(mf)))
        return st;
    return AC_OK;
}

// ---------------------------------------------------------------------------------------------------------
// container: tensor entries and how they tile the data section
// ---------------------------------------------------------------------------------------------------------
static ac_status parse_tensor(ac_model_file *mf, const cJSON *e, ac_tensor *t) {
    char d[64];
    const char *name = e->string;
    memset(t, 0, sizeof *t);
    t->name = name;
    if (!cJSON_IsObject(e))
        return bad(mf, "tensor %s: entry must be a JSON object, got %s", name, jdesc(e, d, sizeof d));
    int nomem = 0;
    const char *dup = dup_key(e, &nomem);
    if (nomem) return ac_fail(AC_ERR_NOMEM, "%s: out of memory", mf->name);
    if (dup) return bad(mf, "tensor %s: the entry has the key \"%.40s\" twice", name, dup);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!dt || !sh || !off)
        return bad(mf, "tensor %s: the entry has no %s", name, !dt ? "dtype" : !sh ? "shape" : "data_offsets");
    if (!cJSON_IsString(dt)) return bad(mf, "tensor %s: dtype must be a string, got %s", name, jdesc(dt, d, sizeof d));
    static const ac_dtype all[] = {AC_DTYPE_F32, AC_DTYPE_F16, AC_DTYPE_BF16, AC_DTYPE_I64, AC_DTYPE_BOOL};
    int found = 0;
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (!strcmp(dt->valuestring, ac_dtype_name(all[i]))) t->dtype = all[i], found = 1;
    if (!found)
        return bad(mf, "tensor %s: dtype \"%.16s\" is not one of F32, F16, BF16, I64, BOOL", name, dt->valuestring);
    if (!cJSON_IsArray(sh))
        return bad(mf, "tensor %s: shape must be a list of integers, got %s", name, jdesc(sh, d, sizeof d));
    int nd = cJSON_GetArraySize(sh);
    if (nd > AC_MAX_DIMS) return bad(mf, "tensor %s: shape has %d dimensions (at most %d)", name, nd, AC_MAX_DIMS);
    t->ndim = nd;
    int i = 0, zero = 0;
    for (const cJSON *x = sh->child; x; x = x->next, i++) {
        int64_t v;
        if (!j_int(x, 0, (double)MAX_DIM, &v))
            return bad(mf, "tensor %s: shape[%d] = %s is not an integer in [0, 2^40]", name, i, jdesc(x, d, sizeof d));
        t->shape[i] = v;
        zero |= v == 0;
    }
    char shp[200];
    fmt_shape(t->shape, t->ndim, shp, sizeof shp);
    // Element count and byte size in 64 bits; a zero dimension makes the count 0 whatever the others are.
    uint64_t numel = 1, size = ac_dtype_size(t->dtype);
    for (int k = 0; k < nd && !zero; k++) {
        if (numel > UINT64_MAX / (uint64_t)t->shape[k])
            return bad(mf, "tensor %s: shape %s has too many elements", name, shp);
        numel *= (uint64_t)t->shape[k];
    }
    if (zero) numel = 0;
    if (numel > UINT64_MAX / size)
        return bad(mf, "tensor %s: shape %s is too large for dtype %s", name, shp, dt->valuestring);
    int64_t b, en;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !j_int(off->child, 0, MAX_OFFSET, &b) ||
        !j_int(off->child->next, 0, MAX_OFFSET, &en))
        return bad(mf, "tensor %s: data_offsets must be two non-negative integers [begin, end]", name);
    if (b > en)
        return bad(mf, "tensor %s: data_offsets [%lld, %lld] end before they begin", name, (long long)b, (long long)en);
    if ((uint64_t)en > mf->data_len)
        return bad_h(mf, "hint: the file is truncated or corrupt; download or convert it again",
                     "tensor %s: data_offsets [%lld, %lld] run past the end of the data section (%llu bytes)", name,
                     (long long)b, (long long)en, (unsigned long long)mf->data_len);
    if (numel * size != (uint64_t)(en - b))
        return bad(mf, "tensor %s: shape %s of %s needs %llu bytes but data_offsets [%lld, %lld] hold %lld", name, shp,
                   dt->valuestring, (unsigned long long)(numel * size), (long long)b, (long long)en,
                   (long long)(en - b));
    t->numel = (int64_t)numel;  // <= data_len, so it fits
    t->nbytes = (size_t)(numel * size);
    t->offset = (uint64_t)b;
    t->data = mf->data + b;
    return AC_OK;
}

static int cmp_storage(const void *pa, const void *pb) {
    const ac_tensor *a = pa, *b = pb;
    if (a->offset != b->offset) return a->offset < b->offset ? -1 : 1;
    if (a->nbytes != b->nbytes) return a->nbytes < b->nbytes ? -1 : 1;
    return strcmp(a->name, b->name);
}

// qsort has no context argument; thread-local so that files can be opened on several threads at once.
static _Thread_local const ac_tensor *g_sort_tensors;
static int cmp_by_name(const void *a, const void *b) {
    return strcmp(g_sort_tensors[*(const int *)a].name, g_sort_tensors[*(const int *)b].name);
}

static void sort_by_name(ac_model_file *mf) {
    for (int i = 0; i < mf->n_tensors; i++) mf->by_name[i] = i;
    if (mf->n_tensors < 2) return;
    g_sort_tensors = mf->tensors;
    qsort(mf->by_name, (size_t)mf->n_tensors, sizeof(int), cmp_by_name);
}

static ac_status parse_tensors(ac_model_file *mf) {
    int n = 0;
    for (const cJSON *e = mf->header->child; e; e = e->next)
        if (strcmp(e->string, "__metadata__") != 0) n++;
    mf->tensors = calloc((size_t)n + 1, sizeof *mf->tensors);
    mf->by_name = calloc((size_t)n + 1, sizeof(int));
    if (!mf->tensors || !mf->by_name) return ac_fail(AC_ERR_NOMEM, "%s: out of memory for %d tensors", mf->name, n);
    int k = 0;
    for (const cJSON *e = mf->header->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) continue;
        ac_status st = parse_tensor(mf, e, &mf->tensors[k++]);
        if (st) return st;
    }
    mf->n_tensors = n;
    if (n > 1) qsort(mf->tensors, (size_t)n, sizeof *mf->tensors, cmp_storage);
    sort_by_name(mf);
    for (int i = 1; i < n; i++) {
        const char *a = mf->tensors[mf->by_name[i - 1]].name, *b = mf->tensors[mf->by_name[i]].name;
        if (!strcmp(a, b)) return bad(mf, "duplicate tensor name %s (the header lists it twice)", b);
    }
    // Storage order must tile [0, data_len) exactly, as the safetensors package checks.
    uint64_t pos = 0;
    for (int i = 0; i < n; i++) {
        const ac_tensor *t = &mf->tensors[i];
        if (t->offset < pos)
            return bad(mf, "tensor %s at data_offsets [%llu, %llu] overlaps tensor %s, which ends at %llu", t->name,
                       (unsigned long long)t->offset, (unsigned long long)(t->offset + t->nbytes),
                       mf->tensors[i - 1].name, (unsigned long long)pos);
        if (t->offset > pos)
            return bad(mf, "%llu bytes of the data section at offset %llu belong to no tensor (a gap before %s)",
                       (unsigned long long)(t->offset - pos), (unsigned long long)pos, t->name);
        pos = t->offset + t->nbytes;
    }
    if (pos != mf->data_len)
        return bad(mf, "%llu trailing bytes after the last tensor (data section is %llu bytes, tensors end at %llu)",
                   (unsigned long long)(mf->data_len - pos), (unsigned long long)mf->data_len, (unsigned long long)pos);
    return AC_OK;
}

// ---------------------------------------------------------------------------------------------------------
// the cnext-trans tensor table (FORMAT.md "Tensors"), computed from the parsed hparams
// ---------------------------------------------------------------------------------------------------------
enum { K_FLOAT, K_BOOL, K_I64 };

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[4];
    unsigned char kind, optional;
    int tensor;  // index of the matching tensor + 1, or 0
} expect_t;

typedef struct {
    expect_t *v;
    int n, cap, nomem;
} expect_list;

static void ex_add(expect_list *l, int kind, int optional, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                   const char *fmt, ...) AC_PRINTF(9, 10);
static void ex_add(expect_list *l, int kind, int optional, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                   const char *fmt, ...) {
    if (l->nomem) return;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        expect_t *v = realloc(l->v, sizeof *v * (size_t)cap);
        if (!v) {
            l->nomem = 1;
            return;
        }
        l->v = v, l->cap = cap;
    }
    expect_t *e = &l->v[l->n++];
    memset(e, 0, sizeof *e);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->name, sizeof e->name, fmt, ap);
    va_end(ap);
    e->kind = (unsigned char)kind, e->optional = (unsigned char)optional, e->ndim = ndim;
    e->shape[0] = d0, e->shape[1] = d1, e->shape[2] = d2, e->shape[3] = d3;
}

#define E "preprocessor.encoder"
#define F1(opt, a, ...) ex_add(l, K_FLOAT, opt, 1, a, 0, 0, 0, __VA_ARGS__)
#define F2(opt, a, b, ...) ex_add(l, K_FLOAT, opt, 2, a, b, 0, 0, __VA_ARGS__)
#define F3(opt, a, b, c, ...) ex_add(l, K_FLOAT, opt, 3, a, b, c, 0, __VA_ARGS__)
#define F4(opt, a, b, c, d, ...) ex_add(l, K_FLOAT, opt, 4, a, b, c, d, __VA_ARGS__)

static void build_table(const ac_model_config *c, expect_list *l) {
    int64_t nb = c->frontend.n_fft / 2 + 1, M = c->frontend.n_mels;
    const int *C = c->encoder.dims;
    int64_t D = c->decoder.d_model, F = c->decoder.dim_feedforward, V = c->vocab_size, P = c->projection.in_features;
    F3(0, nb, 1, c->frontend.n_fft, E ".spectrogram_extractor.stft.conv_real.weight");
    F3(0, nb, 1, c->frontend.n_fft, E ".spectrogram_extractor.stft.conv_imag.weight");
    F2(0, nb, M, E ".logmel_extractor.melW");
    F1(0, M, E ".bn0.weight");
    F1(0, M, E ".bn0.bias");
    F1(0, M, E ".bn0.running_mean");
    F1(0, M, E ".bn0.running_var");
    ex_add(l, K_I64, 1, 0, 0, 0, 0, 0, E ".bn0.num_batches_tracked");
    F4(0, C[0], c->encoder.in_chans, c->encoder.stem_kernel[0], c->encoder.stem_kernel[1],
       E ".downsample_layers.0.0.weight");
    F1(0, C[0], E ".downsample_layers.0.0.bias");
    F1(0, C[0], E ".downsample_layers.0.1.weight");
    F1(0, C[0], E ".downsample_layers.0.1.bias");
    for (int i = 1; i < 4; i++) {
        F1(0, C[i - 1], E ".downsample_layers.%d.0.weight", i);
        F1(0, C[i - 1], E ".downsample_layers.%d.0.bias", i);
        F4(0, C[i], C[i - 1], 2, 2, E ".downsample_layers.%d.1.weight", i);
        F1(0, C[i], E ".downsample_layers.%d.1.bias", i);
    }
    for (int s = 0; s < 4; s++)
        for (int b = 0; b < c->encoder.depths[s]; b++) {
            int64_t Cs = C[s];
            F4(0, Cs, 1, 7, 7, E ".stages.%d.%d.dwconv.weight", s, b);
            F1(0, Cs, E ".stages.%d.%d.dwconv.bias", s, b);
            F1(0, Cs, E ".stages.%d.%d.norm.weight", s, b);
            F1(0, Cs, E ".stages.%d.%d.norm.bias", s, b);
            F2(0, 4 * Cs, Cs, E ".stages.%d.%d.pwconv1.weight", s, b);
            F1(0, 4 * Cs, E ".stages.%d.%d.pwconv1.bias", s, b);
            F2(0, Cs, 4 * Cs, E ".stages.%d.%d.pwconv2.weight", s, b);
            F1(0, Cs, E ".stages.%d.%d.pwconv2.bias", s, b);
            F1(0, Cs, E ".stages.%d.%d.scale_layer", s, b);
        }
    F1(1, C[3], E ".norm.weight");
    F1(1, C[3], E ".norm.bias");
    F2(1, 527, C[3], E ".head_audioset.weight");
    F1(1, 527, E ".head_audioset.bias");
    F2(0, D, P, "model.projection.2.weight");
    F1(0, D, "model.projection.2.bias");
    F2(0, V, D, "model.decoder.emb_layer.weight");
    F3(0, c->decoder.max_positions, 1, D, "model.decoder.pos_encoding.pos_embedding");
    for (int k = 0; k < c->decoder.num_layers; k++) {
        const char *att[2] = {"self_attn", "multihead_attn"};
        for (int a = 0; a < 2; a++) {
            F2(0, 3 * D, D, "model.decoder.layers.%d.%s.in_proj_weight", k, att[a]);
            F1(0, 3 * D, "model.decoder.layers.%d.%s.in_proj_bias", k, att[a]);
            F2(0, D, D, "model.decoder.layers.%d.%s.out_proj.weight", k, att[a]);
            F1(0, D, "model.decoder.layers.%d.%s.out_proj.bias", k, att[a]);
        }
        F2(0, F, D, "model.decoder.layers.%d.linear1.weight", k);
        F1(0, F, "model.decoder.layers.%d.linear1.bias", k);
        F2(0, D, F, "model.decoder.layers.%d.linear2.weight", k);
        F1(0, D, "model.decoder.layers.%d.linear2.bias", k);
        for (int nn = 1; nn <= 3; nn++) {
            F1(0, D, "model.decoder.layers.%d.norm%d.weight", k, nn);
            F1(0, D, "model.decoder.layers.%d.norm%d.bias", k, nn);
        }
    }
    F2(0, V, D, "model.decoder.classifier.weight");
    F1(0, V, "model.decoder.classifier.bias");
    ex_add(l, K_BOOL, 0, 1, V, 0, 0, 0, "model.forbid_rep_mask");
    if (c->decoding.n_tasks > 0) ex_add(l, K_I64, 0, 1, c->decoding.n_tasks, 0, 0, 0, "model.task_id_to_token_id");
}

#undef E

// Problems are kept as short strings in two lists (by table order; unknown names) so that the message can
// alternate between them: a renamed tensor then shows up as its unknown name next to its missing one.
typedef struct {
    char **v;
    int n, cap, nomem;
} strlist;

static void sl_add(strlist *l, const char *fmt, ...) AC_PRINTF(2, 3);
static void sl_add(strlist *l, const char *fmt, ...) {
    if (l->nomem) return;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 32;
        char **v = realloc(l->v, sizeof *v * (size_t)cap);
        if (!v) {
            l->nomem = 1;
            return;
        }
        l->v = v, l->cap = cap;
    }
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (!(l->v[l->n] = strdup(buf))) {
        l->nomem = 1;
        return;
    }
    l->n++;
}

static void sl_free(strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
}

static int cmp_expect_name(const void *a, const void *b) {
    return strcmp((*(const expect_t *const *)a)->name, (*(const expect_t *const *)b)->name);
}

static int cmp_key_expect(const void *key, const void *elem) {
    return strcmp((const char *)key, (*(const expect_t *const *)elem)->name);
}

static const char *kind_names(int kind) {
    return kind == K_FLOAT ? "F32, F16 or BF16" : kind == K_BOOL ? "BOOL" : "I64";
}

static int dtype_kind(ac_dtype d) { return d == AC_DTYPE_BOOL ? K_BOOL : d == AC_DTYPE_I64 ? K_I64 : K_FLOAT; }

static ac_status check_table(ac_model_file *mf) {
    expect_list l = {0};
    strlist known = {0}, unknown = {0};
    expect_t **sorted = NULL;
    ac_status st = AC_OK;
    build_table(&mf->cfg, &l);
    if (!l.nomem) sorted = malloc(sizeof *sorted * ((size_t)l.n + 1));
    if (l.nomem || !sorted) {
        st = ac_fail(AC_ERR_NOMEM, "%s: out of memory for the tensor table", mf->name);
        goto done;
    }
    for (int i = 0; i < l.n; i++) sorted[i] = &l.v[i];
    qsort(sorted, (size_t)l.n, sizeof *sorted, cmp_expect_name);
    int gamma = 0;
    for (int i = 0; i < mf->n_tensors; i++) {
        const ac_tensor *t = &mf->tensors[mf->by_name[i]];
        expect_t **hit = bsearch(t->name, sorted, (size_t)l.n, sizeof *sorted, cmp_key_expect);
        if (hit) {
            (*hit)->tensor = mf->by_name[i] + 1;
            continue;
        }
        size_t nl = strlen(t->name);
        gamma |= nl > 6 && !strcmp(t->name + nl - 6, ".gamma");
        if (!strcmp(t->name, "model.task_id_to_token_id"))
            sl_add(&unknown, "unexpected tensor %s (decoding.task_names is empty)", t->name);
        else sl_add(&unknown, "unknown tensor %s", t->name);
    }
    for (int i = 0; i < l.n; i++) {
        const expect_t *e = &l.v[i];
        if (!e->tensor) {
            if (!e->optional) sl_add(&known, "missing %s", e->name);
            continue;
        }
        const ac_tensor *t = &mf->tensors[e->tensor - 1];
        int same = t->ndim == e->ndim;
        for (int k = 0; same && k < e->ndim; k++) same = t->shape[k] == e->shape[k];
        if (!same) {
            char got[200], want[120];
            fmt_shape(t->shape, t->ndim, got, sizeof got);
            fmt_shape(e->shape, e->ndim, want, sizeof want);
            sl_add(&known, "misshaped %s: %s (expected %s)", e->name, got, want);
        }
        if (dtype_kind(t->dtype) != e->kind)
            sl_add(&known, "%s has dtype %s (expected %s)", e->name, ac_dtype_name(t->dtype), kind_names(e->kind));
    }
    if (known.nomem || unknown.nomem) {
        st = ac_fail(AC_ERR_NOMEM, "%s: out of memory listing tensor problems", mf->name);
        goto done;
    }
    int total = known.n + unknown.n;
    if (total) {
        // ac_fail keeps 1023 characters: list what fits whole, then count the rest.
        const char *hint = gamma ? "hint: `gamma` is the old upstream name of `scale_layer`; re-convert with "
                                   "tools/convert.py, which renames it"
                                 : "hint: re-convert with tools/convert.py; the tensors do not match architecture "
                                   "cnext-trans with these hparams";
        char head[400], list[1024] = "";
        snprintf(head, sizeof head, "%s: %d problem%s with the cnext-trans tensors: ", mf->name, total,
                 total == 1 ? "" : "s");
        int budget = 1000 - (int)strlen(head) - (int)strlen(hint) - 32;
        size_t pos = 0;
        int listed = 0, ik = 0, iu = 0;
        while (listed < total && listed < MAX_LISTED) {
            // alternate: one known-name problem, one unknown name, while both lists last
            const char *p = (iu >= unknown.n || (ik < known.n && ik <= iu)) ? known.v[ik++] : unknown.v[iu++];
            size_t need_len = strlen(p) + (listed ? 2 : 0);
            if ((int)(pos + need_len) > budget) break;
            pos += (size_t)snprintf(list + pos, sizeof list - pos, "%s%s", listed ? "; " : "", p);
            listed++;
        }
        if (listed < total)
            snprintf(list + pos, sizeof list - pos, "%s... and %d more", listed ? "; " : "", total - listed);
        sanitize(list);
        st = ac_fail(AC_ERR_FORMAT, "%s%s (%s)", head, list, hint);
    }
done:
    sl_free(&known);
    sl_free(&unknown);
    free(sorted);
    free(l.v);
    return st;
}

// Values that index other things: task token ids into the vocabulary, and BOOL bytes that must be 0/1 (any other
// byte is not a valid bool for numpy/torch, and a kernel testing `!= 0` vs `== 1` would disagree).
static ac_status check_values(ac_model_file *mf) {
    ac_model_config *c = &mf->cfg;
    const ac_tensor *t;
    if (c->decoding.n_tasks > 0) {
        if (ac_model_file_tensor(mf, "model.task_id_to_token_id", &t)) return AC_ERR_INTERNAL;  // table-checked
        for (int i = 0; i < c->decoding.n_tasks; i++) {
            int64_t v;
            memcpy(&v, (const unsigned char *)t->data + 8 * (size_t)i, 8);  // the offset may be unaligned
            if (v < 0 || v >= c->vocab_size)
                return bad(mf, "model.task_id_to_token_id[%d] = %lld (task %s) is not a token id (vocab_size %d)", i,
                           (long long)v, c->decoding.task_names[i], c->vocab_size);
            c->decoding.task_token_ids[i] = v;
        }
    }
    if (ac_model_file_tensor(mf, "model.forbid_rep_mask", &t)) return AC_ERR_INTERNAL;  // table-checked
    const unsigned char *m = t->data;
    for (int64_t i = 0; i < t->numel; i++)
        if (m[i] > 1)
            return bad(mf, "model.forbid_rep_mask[%lld] holds byte %u (BOOL must be 0 or 1)", (long long)i, m[i]);
    return AC_OK;
}

// ---------------------------------------------------------------------------------------------------------
// open / close
// ---------------------------------------------------------------------------------------------------------
static ac_status parse_all(ac_model_file *mf) {
    if (mf->len < 8)
        return bad_h(mf, "hint: the file is truncated or not a model file",
                     "%zu bytes: too short for a safetensors file (it starts with an 8-byte header length)", mf->len);
    uint64_t N = 0;
    for (int i = 7; i >= 0; i--) N = N << 8 | mf->base[i];
    if (N > MAX_HEADER)
        return bad_h(mf, "hint: the file is corrupt or not a safetensors file",
                     "header length %llu exceeds the 100 MiB limit", (unsigned long long)N);
    if (N > mf->len - 8)
        return bad_h(mf, "hint: the file is truncated or not a safetensors file",
                     "header length %llu runs past the end of the file (%zu bytes)", (unsigned long long)N, mf->len);
    mf->header_len = N;
    mf->data = mf->base + 8 + N;
    mf->data_len = mf->len - 8 - N;
    // A NUL-terminated private copy: cJSON then never reads past the header, and a NUL inside it (which
    // would silently end the JSON early) can be refused.
    const unsigned char *h = mf->base + 8;
    const unsigned char *nul = memchr(h, 0, (size_t)N);
    if (nul) return bad(mf, "header contains a NUL byte at offset %lld", (long long)(nul - h));
    size_t bad_at = utf8_invalid_at(h, (size_t)N);
    if (bad_at < N) return bad(mf, "header is not valid UTF-8 (byte %zu of %llu)", bad_at, (unsigned long long)N);
    char *copy = malloc((size_t)N + 1);
    if (!copy)
        return ac_fail(AC_ERR_NOMEM, "%s: out of memory for a %llu-byte header", mf->name, (unsigned long long)N);
    if (N) memcpy(copy, h, (size_t)N);
    copy[N] = '\0';
    const char *end = NULL;
    mf->header = cJSON_ParseWithOpts(copy, &end, 1);
    long long err_at = end ? (long long)(end - copy) : -1;
    free(copy);
    char d[64];
    if (!mf->header)
        return bad(mf, "header is not valid JSON (error at byte %lld of %llu)", err_at, (unsigned long long)N);
    if (!cJSON_IsObject(mf->header))
        return bad(mf, "header must be a JSON object, got %s", jdesc(mf->header, d, sizeof d));
    int nomem = 0;
    const char *dup = dup_key(mf->header, &nomem);
    if (nomem) return ac_fail(AC_ERR_NOMEM, "%s: out of memory", mf->name);
    if (dup) {
        if (!strcmp(dup, "__metadata__")) return bad(mf, "the header has two __metadata__ entries");
        return bad(mf, "duplicate tensor name %s (the header lists it twice)", dup);
    }
    ac_status st;
    if ((st = parse_metadata(mf)) || (st = parse_tensors(mf)) || (st = check_table(mf)) || (st = check_values(mf)))
        return st;
    return AC_OK;
}

void ac_model_file_close(ac_model_file *mf) {
    if (!mf) return;
    if (mf->mapped && mf->base) munmap((void *)mf->base, mf->len);
    cJSON_Delete(mf->header);
    cJSON_Delete(mf->j_hparams);
    cJSON_Delete(mf->j_frontend);
    cJSON_Delete(mf->j_decoding);
    cJSON_Delete(mf->j_tokenizer);
    cJSON_Delete(mf->j_sources);
    cJSON_Delete(mf->j_converter);
    free(mf->tensors);
    free(mf->by_name);
    free(mf->itos);
    free(mf->sources);
    free(mf->name);
    free(mf);
}

static ac_status new_object(const char *name, ac_model_file **out) {
    ac_model_file *mf = calloc(1, sizeof *mf);
    if (mf) mf->name = strdup(name);
    if (!mf || !mf->name) {
        free(mf);
        return ac_fail(AC_ERR_NOMEM, "%s: out of memory", name);
    }
    *out = mf;
    return AC_OK;
}

ac_status ac_model_file_open_memory(const void *buf, size_t len, const char *name, ac_model_file **out) {
    if (!out) return ac_fail(AC_ERR_INVALID_ARG, "ac_model_file_open_memory: out is NULL");
    *out = NULL;
    if (!name) name = "<memory>";
    if (!buf && len) return ac_fail(AC_ERR_INVALID_ARG, "%s: ac_model_file_open_memory: buf is NULL", name);
    ac_model_file *mf = NULL;
    ac_status st = new_object(name, &mf);
    if (st) return st;
    static const unsigned char empty[1];
    mf->base = buf ? buf : empty;
    mf->len = len;
    if ((st = parse_all(mf))) {
        ac_model_file_close(mf);
        return st;
    }
    *out = mf;
    return AC_OK;
}

ac_status ac_model_file_open(const char *path, ac_model_file **out) {
    if (!out) return ac_fail(AC_ERR_INVALID_ARG, "ac_model_file_open: out is NULL");
    *out = NULL;
    if (!path) return ac_fail(AC_ERR_INVALID_ARG, "ac_model_file_open: path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ac_fail(AC_ERR_IO,
                       "%s: cannot open: %s (hint: check the path; models are converted with tools/convert.py)", path,
                       strerror(errno));
    struct stat s;
    if (fstat(fd, &s) != 0) {
        int e = errno;
        close(fd);
        return ac_fail(AC_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(s.st_mode)) {
        close(fd);
        return ac_fail(AC_ERR_IO, "%s: not a regular file%s (hint: give the path of a .safetensors model file)", path,
                       S_ISDIR(s.st_mode) ? " but a directory" : "");
    }
    ac_model_file *mf = NULL;
    ac_status st = new_object(path, &mf);
    if (st) {
        close(fd);
        return st;
    }
    mf->len = (size_t)s.st_size;
    if (mf->len >= 8) {  // mmap refuses length 0; short files fail in parse_all without being read
        void *p = mmap(NULL, mf->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            ac_model_file_close(mf);
            return ac_fail(e == ENOMEM ? AC_ERR_NOMEM : AC_ERR_IO, "%s: cannot map %lld bytes: %s", path,
                           (long long)s.st_size, strerror(e));
        }
        mf->base = p;
        mf->mapped = 1;
    } else {
        static const unsigned char none[1];  // parse_all reports the length without reading
        mf->base = none;
    }
    close(fd);
    if ((st = parse_all(mf))) {
        ac_model_file_close(mf);
        return st;
    }
    *out = mf;
    return AC_OK;
}

// ---------------------------------------------------------------------------------------------------------
// accessors
// ---------------------------------------------------------------------------------------------------------
const char *ac_model_file_name(const ac_model_file *mf) { return mf ? mf->name : ""; }

const ac_model_config *ac_model_file_config(const ac_model_file *mf) { return mf ? &mf->cfg : NULL; }

const char *ac_model_file_meta(const ac_model_file *mf, const char *key) {
    if (!mf || !key) return NULL;
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(mf->meta, key));
}

int ac_model_file_n_tensors(const ac_model_file *mf) { return mf ? mf->n_tensors : 0; }

ac_status ac_model_file_tensor_at(const ac_model_file *mf, int index, const ac_tensor **out) {
    if (out) *out = NULL;
    if (!mf || !out) return ac_fail(AC_ERR_INVALID_ARG, "ac_model_file_tensor_at: NULL argument");
    if (index < 0 || index >= mf->n_tensors)
        return ac_fail(AC_ERR_INVALID_ARG, "%s: tensor index %d out of range (the file has %d tensors)", mf->name,
                       index, mf->n_tensors);
    *out = &mf->tensors[index];
    return AC_OK;
}

static const ac_tensor *find(const ac_model_file *mf, const char *name) {
    int lo = 0, hi = mf->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const ac_tensor *t = &mf->tensors[mf->by_name[mid]];
        int c = strcmp(name, t->name);
        if (!c) return t;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

ac_status ac_model_file_tensor(const ac_model_file *mf, const char *name, const ac_tensor **out) {
    if (out) *out = NULL;
    if (!mf || !name || !out) return ac_fail(AC_ERR_INVALID_ARG, "ac_model_file_tensor: NULL argument");
    const ac_tensor *t = find(mf, name);
    if (!t)
        return ac_fail(AC_ERR_INVALID_ARG, "%s: no tensor named %s (hint: `audiocap info --tensors %s` lists them)",
                       mf->name, name, mf->name);
    *out = t;
    return AC_OK;
}

int ac_model_file_has_tensor(const ac_model_file *mf, const char *name) { return mf && name && find(mf, name); }

// ---------------------------------------------------------------------------------------------------------
// conversion: IEEE binary16 and bfloat16 widen exactly to binary32
// ---------------------------------------------------------------------------------------------------------
static float bits_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float f16_to_f32(uint32_t h) {
    uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | man << 13);  // inf; NaN keeps its payload
    if (exp) return bits_to_float(sign | (exp + 112u) << 23 | man << 13);   // rebias 15 -> 127
    if (!man) return bits_to_float(sign);                                   // +-0
    // subnormal: man * 2^-24; shift the leading 1 up to the implicit-bit position, lowering the exponent
    uint32_t e = 113;  // 127 - 14
    while (!(man & 0x400u)) man <<= 1, e--;
    return bits_to_float(sign | e << 23 | (man & 0x3ffu) << 13);
}

ac_status ac_tensor_to_f32(const ac_tensor *t, float *dst) {
    if (!t || (!dst && t->numel)) return ac_fail(AC_ERR_INVALID_ARG, "ac_tensor_to_f32: NULL argument");
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case AC_DTYPE_F32:
        if (t->numel) memcpy(dst, p, (size_t)t->numel * 4);
        return AC_OK;
    case AC_DTYPE_F16:
        for (int64_t i = 0; i < t->numel; i++) dst[i] = f16_to_f32((uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8);
        return AC_OK;
    case AC_DTYPE_BF16:
        for (int64_t i = 0; i < t->numel; i++) dst[i] = ac_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return AC_OK;
    case AC_DTYPE_I64:
    case AC_DTYPE_BOOL: break;
    }
    return ac_fail(AC_ERR_INVALID_ARG,
                   "tensor %s: dtype %s is not a floating-point type (ac_tensor_to_f32 converts F32, "
                   "F16 and BF16)",
                   t->name ? t->name : "?", ac_dtype_name(t->dtype));
}

// ---------------------------------------------------------------------------------------------------------
// info
// ---------------------------------------------------------------------------------------------------------
// A string from the file made safe to print (see sanitize); up to 8 can be in use in one fprintf.
static const char *cl(const char *s) {
    static _Thread_local char ring[8][256];
    static _Thread_local int k;
    k = (k + 1) % 8;
    snprintf(ring[k], sizeof ring[k], "%s", s ? s : "");
    sanitize(ring[k]);
    return ring[k];
}

// A token as a JSON string literal, so that spaces and control characters stay visible.
static void print_token(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static void print_ints(FILE *f, const int *v, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) fprintf(f, "%s%d", i ? ", " : "", v[i]);
    fputc(']', f);
}

ac_status ac_model_file_print_info(const ac_model_file *mf, FILE *f, int list_tensors) {
    if (!mf || !f) return ac_fail(AC_ERR_INVALID_ARG, "ac_model_file_print_info: NULL argument");
    const ac_model_config *c = &mf->cfg;
    fprintf(f, "file            %s (%zu bytes: header %llu, data %llu)\n", mf->name, mf->len,
            (unsigned long long)mf->header_len, (unsigned long long)mf->data_len);
    fprintf(f, "format          audiocap, format_version %d\n", c->format_version);
    fprintf(f, "architecture    %s\n", c->architecture);
    fprintf(f, "model_name      %s\n", cl(c->model_name));
    fprintf(f, "encoder         ConvNeXt: in_chans %d, depths ", c->encoder.in_chans);
    print_ints(f, c->encoder.depths, 4);
    fprintf(f, ", dims ");
    print_ints(f, c->encoder.dims, 4);
    fprintf(f, "\n                stem kernel ");
    print_ints(f, c->encoder.stem_kernel, 2);
    fprintf(f, " stride ");
    print_ints(f, c->encoder.stem_stride, 2);
    fprintf(f, " padding ");
    print_ints(f, c->encoder.stem_padding, 2);
    fprintf(f, ", ln_eps %g, frame_len_rule %s\n", c->encoder.ln_eps,
            ac_frame_len_rule_name(c->encoder.frame_len_rule));
    fprintf(f, "projection      %d -> %d, %s\n", c->projection.in_features, c->projection.out_features,
            ac_activation_name(c->projection.activation));
    fprintf(f, "decoder         Transformer (%s): d_model %d, nhead %d, num_layers %d, dim_feedforward %d, %s\n",
            c->decoder.norm_first ? "pre-LN" : "post-LN", c->decoder.d_model, c->decoder.nhead, c->decoder.num_layers,
            c->decoder.dim_feedforward, ac_activation_name(c->decoder.activation));
    fprintf(f, "                ln_eps %g, emb_scale %.9g, max_positions %d\n", c->decoder.ln_eps, c->decoder.emb_scale,
            c->decoder.max_positions);
    fprintf(f, "frontend        %d Hz, n_fft %d, win_length %d, hop %d, window %s, center %s, pad_mode %s\n",
            c->frontend.sample_rate, c->frontend.n_fft, c->frontend.win_length, c->frontend.hop, cl(c->frontend.window),
            c->frontend.center ? "true" : "false", cl(c->frontend.pad_mode));
    fprintf(f, "                %d mels (%s) %g-%g Hz, amin %g, ref %g, top_db ", c->frontend.n_mels,
            cl(c->frontend.mel_scale), c->frontend.fmin, c->frontend.fmax, c->frontend.amin, c->frontend.ref);
    if (c->frontend.has_top_db) fprintf(f, "%g", c->frontend.top_db);
    else fprintf(f, "none");
    fprintf(f, ", bn_eps %g\n", c->frontend.bn_eps);
    fprintf(f, "                resampler %s (lowpass_filter_width %d, rolloff %g), channel_mix %s\n",
            cl(c->frontend.resampler), c->frontend.lowpass_filter_width, c->frontend.rolloff,
            cl(c->frontend.channel_mix));
    fprintf(f, "decoding        beam_size %d, pred size %d..%d, forbid_rep_mode %s\n", c->decoding.beam_size,
            c->decoding.min_pred_size, c->decoding.max_pred_size, cl(c->decoding.forbid_rep_mode));
    fprintf(f, "                pad_id %d, bos_id %d, eos_id %d, unk_id %d\n", c->decoding.pad_id, c->decoding.bos_id,
            c->decoding.eos_id, c->decoding.unk_id);
    fprintf(f, "tasks           ");
    if (!c->decoding.n_tasks) fprintf(f, "none (no task embedding)");
    for (int i = 0; i < c->decoding.n_tasks; i++)
        fprintf(f, "%s%s (token %lld%s)", i ? ", " : "", cl(c->decoding.task_names[i]),
                (long long)c->decoding.task_token_ids[i], i == c->decoding.default_task ? ", default" : "");
    fprintf(f, "\n");
    fprintf(f, "tokenizer       %s, vocab_size %d:", c->tokenizer.kind, c->tokenizer.n_itos);
    int show = c->tokenizer.n_itos < 10 ? c->tokenizer.n_itos : 10;
    for (int i = 0; i < show; i++) {
        fputc(' ', f);
        print_token(f, c->tokenizer.itos[i]);
    }
    fprintf(f, "%s\n", show < c->tokenizer.n_itos ? " ..." : "");
    fprintf(f, "post_decoding   ");
    for (int i = 0; i < c->tokenizer.n_post; i++) fprintf(f, "%s%s", i ? ", " : "", c->tokenizer.post_decoding[i]);
    fprintf(f, "%s\n", c->tokenizer.n_post ? "" : "none");
    for (int i = 0; i < c->n_sources; i++)
        fprintf(f, "%s%s, %lld bytes, sha256 %s\n", i ? "                " : "source          ", cl(c->sources[i].name),
                (long long)c->sources[i].bytes, cl(c->sources[i].sha256));
    if (!c->n_sources) fprintf(f, "source          none listed\n");
    fprintf(f, "converter       %s %s\n", cl(c->converter_tool), cl(c->converter_version));
    // per-dtype totals; "parameters" counts the floating-point tensors' elements
    int64_t count[5] = {0}, elems[5] = {0};
    uint64_t bytes[5] = {0};
    int64_t params = 0;
    for (int i = 0; i < mf->n_tensors; i++) {
        const ac_tensor *t = &mf->tensors[i];
        count[t->dtype]++;
        elems[t->dtype] += t->numel;
        bytes[t->dtype] += t->nbytes;
        if (dtype_kind(t->dtype) == K_FLOAT) params += t->numel;
    }
    fprintf(f, "tensors         %d, %lld parameters (floating-point elements)\n", mf->n_tensors, (long long)params);
    for (int d = 0; d < 5; d++)
        if (count[d])
            fprintf(f, "                %-4s %5lld tensors %12lld elements %14llu bytes\n", ac_dtype_name((ac_dtype)d),
                    (long long)count[d], (long long)elems[d], (unsigned long long)bytes[d]);
    if (list_tensors) {
        fprintf(f, "\n%-64s %-5s %-20s %s\n", "name", "dtype", "shape", "offset");
        for (int i = 0; i < mf->n_tensors; i++) {
            const ac_tensor *t = &mf->tensors[i];
            char shp[200];
            fmt_shape(t->shape, t->ndim, shp, sizeof shp);
            fprintf(f, "%-64s %-5s %-20s %llu\n", cl(t->name), ac_dtype_name(t->dtype), shp,
                    (unsigned long long)t->offset);
        }
    }
    if (ferror(f)) return ac_fail(AC_ERR_IO, "%s: writing the summary failed", mf->name);
    return AC_OK;
}
