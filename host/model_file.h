// audiocap model files (weights/FORMAT.md, format_version 1): a safetensors container whose __metadata__ holds the
// hyper-parameters, front-end constants, decoding defaults and tokenizer, and whose tensors follow the
// `cnext-trans` table. ac_model_file_open() maps the file read-only and validates all of it up front, so that
// code using an opened model never meets a missing, misshaped or out-of-bounds tensor.
//
// Usage:
//   ac_model_file *mf;
//   if (ac_model_file_open("conette.safetensors", &mf) != AC_OK) { fprintf(stderr, "%s\n", ac_last_error()); ... }
//   const ac_model_config *cfg = ac_model_file_config(mf);        // parsed hparams/frontend/decoding/tokenizer
//   const ac_tensor *w;
//   ac_model_file_tensor(mf, "model.decoder.emb_layer.weight", &w);  // w->data points into the mapping
//   float *f = malloc(sizeof(float) * w->numel);  ac_tensor_to_f32(w, f);
//   ac_model_file_close(mf);                                       // invalidates every ac_tensor and string
#ifndef AC_MODEL_FILE_H
#define AC_MODEL_FILE_H

#include "ac.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AC_MODEL_FORMAT_VERSION 1
#define AC_MAX_DIMS 8
#define AC_MAX_TASKS 16
#define AC_TASK_NAME_CAP 64  // task names are at most 63 bytes
#define AC_MAX_POST_STEPS 16

typedef struct ac_model_file ac_model_file;

typedef enum { AC_DTYPE_F32, AC_DTYPE_F16, AC_DTYPE_BF16, AC_DTYPE_I64, AC_DTYPE_BOOL } ac_dtype;

const char *ac_dtype_name(ac_dtype d);  // "F32", "F16", "BF16", "I64", "BOOL" (safetensors spelling)
size_t ac_dtype_size(ac_dtype d);       // bytes per element

// A view of one stored tensor. Valid until ac_model_file_close(). `data` points into the file mapping and is not
// necessarily aligned for its dtype: read it with memcpy or ac_tensor_to_f32, never by casting.
typedef struct {
    const char *name;
    ac_dtype dtype;
    int ndim;                    // 0 for a scalar (numel 1)
    int64_t shape[AC_MAX_DIMS];  // PyTorch order; entries past ndim are 0
    int64_t numel;
    size_t nbytes;    // numel * ac_dtype_size(dtype)
    uint64_t offset;  // begin, relative to the start of the data section
    const void *data;
} ac_tensor;

typedef enum { AC_ACT_RELU, AC_ACT_GELU } ac_activation;
// How a clip's frame count after the encoder is derived from its length (FORMAT.md, hparams.encoder).
typedef enum { AC_FRAME_LEN_CONETTE, AC_FRAME_LEN_DCASE2024 } ac_frame_len_rule;

const char *ac_activation_name(ac_activation a);
const char *ac_frame_len_rule_name(ac_frame_len_rule r);

typedef struct {
    const char *name;    // file name as converted, e.g. "pytorch_model.bin"
    const char *sha256;  // hex digest as written by the converter
    int64_t bytes;
} ac_model_source;

// Everything __metadata__ says, parsed and checked. Strings point into the model file object.
typedef struct {
    int format_version;        // 1
    const char *architecture;  // "cnext-trans"
    const char *model_name;    // registry name, e.g. "conette"

    struct {
        int in_chans;
        int depths[4];
        int dims[4];
        int stem_kernel[2], stem_stride[2], stem_padding[2];
        double ln_eps;
        ac_frame_len_rule frame_len_rule;
    } encoder;
    struct {
        int in_features, out_features;  // in_features = dims[3], out_features = decoder.d_model
        ac_activation activation;
    } projection;
    struct {
        int d_model, nhead, num_layers, dim_feedforward;
        ac_activation activation;
        int norm_first;  // 0: post-LN (the only layout cnext-trans models use)
        double ln_eps;
        double emb_scale;  // sqrt(d_model) for the published models
        int max_positions;
    } decoder;
    int vocab_size;

    struct {
        int sample_rate, n_fft, win_length, hop, n_mels;
        double fmin, fmax, amin, ref;
        int has_top_db;  // 0 when top_db is null
        double top_db;
        double bn_eps;
        int center;
        int lowpass_filter_width;
        double rolloff;
        const char *window, *pad_mode, *mel_scale, *resampler, *channel_mix;
    } frontend;

    struct {
        int beam_size, min_pred_size, max_pred_size;
        int pad_id, bos_id, eos_id, unk_id;
        const char *forbid_rep_mode;  // "content_words", ...
        int n_tasks;                  // 0 for models without task embedding
        char task_names[AC_MAX_TASKS][AC_TASK_NAME_CAP];
        int64_t task_token_ids[AC_MAX_TASKS];  // from model.task_id_to_token_id
        int default_task;                      // index into task_names, or -1 (default_task null)
    } decoding;

    struct {
        const char *kind;         // "conette_aac" | "hf_wordlevel"
        int n_itos;               // = vocab_size
        const char *const *itos;  // token id -> string
        int n_post;
        const char *post_decoding[AC_MAX_POST_STEPS];  // ordered detokenizer steps
    } tokenizer;

    int n_sources;
    const ac_model_source *sources;
    const char *converter_tool, *converter_version;  // converter_version may be "" when the writer gave none
} ac_model_config;

// Maps `path` read-only and validates the container, the metadata and the tensor table (FORMAT.md). On failure
// *out is NULL and ac_last_error() names the file, every problem found and a hint.
ac_status ac_model_file_open(const char *path, ac_model_file **out);
// The same on bytes already in memory (tests, embedding). `buf` is neither copied nor freed and must outlive the
// object; `name` is used in messages.
ac_status ac_model_file_open_memory(const void *buf, size_t len, const char *name, ac_model_file **out);
void ac_model_file_close(ac_model_file *mf);  // NULL is fine

const char *ac_model_file_name(const ac_model_file *mf);
const ac_model_config *ac_model_file_config(const ac_model_file *mf);
// The raw __metadata__ string for `key`, or NULL when absent.
const char *ac_model_file_meta(const ac_model_file *mf, const char *key);

// Tensors are indexed in storage order (ascending data offset).
int ac_model_file_n_tensors(const ac_model_file *mf);
ac_status ac_model_file_tensor_at(const ac_model_file *mf, int index, const ac_tensor **out);
// AC_ERR_INVALID_ARG (and *out NULL) when there is no tensor `name`; use ac_model_file_has_tensor for the
// optional ones.
ac_status ac_model_file_tensor(const ac_model_file *mf, const char *name, const ac_tensor **out);
int ac_model_file_has_tensor(const ac_model_file *mf, const char *name);

// Converts an F32/F16/BF16 tensor to float32 (exact: every F16/BF16 value, including subnormals, infinities and
// NaNs, has a float32 twin). dst holds t->numel floats. AC_ERR_INVALID_ARG for I64/BOOL tensors.
ac_status ac_tensor_to_f32(const ac_tensor *t, float *dst);

// Human-readable summary (what `audiocap info` prints); list_tensors adds one line per tensor.
ac_status ac_model_file_print_info(const ac_model_file *mf, FILE *f, int list_tensors);

#ifdef __cplusplus
}
#endif
#endif
