// The model on one CUDA device: every tensor of a model file (weights/FORMAT.md) uploaded once as float32 under
// its checkpoint name ("preprocessor.encoder.stages.1.0.pwconv1.weight", "model.decoder.layers.0.linear1.bias"),
// plus bfloat16 copies of the decoder's 2-D+ weight matrices when the precision is AC_PREC_BF16; one stream and one
// cuBLAS / cuBLASLt handle that every GPU stage of this model uses, in order.
//
//   ac_gpu_model *g;  ac_gpu_model_load("conette.safetensors", 0, AC_PREC_BF16, &g);
//   const float *w = ac_gpu_f32(g, "model.projection.2.weight");   // device pointer, (D, C3) as stored
//   ac_gpu_model_free(g);
#ifndef AC_GPU_MODEL_H
#define AC_GPU_MODEL_H

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "ac.h"
#include "gpu_types.h"
#include "model_file.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ac_gpu_model ac_gpu_model;

// Opens the model file, selects `device`, creates the stream and handles, uploads the tensors. On failure *out is
// NULL and ac_last_error() says why (AC_ERR_NOMEM when the device is too small).
ac_status ac_gpu_model_load(const char *path, int device, ac_precision prec, ac_gpu_model **out);
void ac_gpu_model_free(ac_gpu_model *g);  // NULL is fine; frees every attached state too

const ac_model_config *ac_gpu_model_config(const ac_gpu_model *g);
const ac_model_file *ac_gpu_model_file(const ac_gpu_model *g);  // host view of the file (kept open)
ac_precision ac_gpu_model_precision(const ac_gpu_model *g);
int ac_gpu_model_device(const ac_gpu_model *g);
// Makes the model's device current for the calling thread (cudaSetDevice). Every entry point that touches the
// device calls it first: a worker thread starts on device 0, and what CUDA makes (events, handles, buffers)
// belongs to the device current at the time, so on a second GPU an event made before the switch could not be
// recorded on the model's stream. The thread's current device stays the model's afterwards.
ac_status ac_gpu_model_use(const ac_gpu_model *g);
const char *ac_gpu_model_device_name(const ac_gpu_model *g);  // "NVIDIA H100 80GB HBM3"
size_t ac_gpu_model_weight_bytes(const ac_gpu_model *g);       // device bytes held by the uploaded tensors

// Device float32 copy of tensor `name` (the checkpoint's shape, row-major), NULL when absent. The old upstream
// name of the layer scale (`...gamma`) and the converted one (`...scale_layer`) both resolve.
const float *ac_gpu_f32(const ac_gpu_model *g, const char *name);
// Device bfloat16 copy (round to nearest even) of a tensor for which ac_gpu_model_wants_bf16 holds (a decoder
// tensor "model.decoder.*" with >= 2 dimensions, model loaded for AC_PREC_BF16); NULL for any other.
const void *ac_gpu_bf16(const ac_gpu_model *g, const char *name);
int ac_gpu_model_wants_bf16(ac_precision prec, const ac_tensor *t);
// Number of elements of tensor `name` (0 when absent) and its shape (up to AC_MAX_DIMS; shape may be NULL).
int64_t ac_gpu_numel(const ac_gpu_model *g, const char *name, int *ndim, int64_t *shape);

cudaStream_t ac_gpu_stream(const ac_gpu_model *g);
void *ac_gpu_cublas(const ac_gpu_model *g);    // cublasHandle_t bound to ac_gpu_stream; FP32 models: pedantic math
void *ac_gpu_cublaslt(const ac_gpu_model *g);  // cublasLtHandle_t

// Host copy of model.forbid_rep_mask (vocab_size bytes, 1 = repetition forbidden) for the beam search.
const uint8_t *ac_gpu_host_forbid_mask(const ac_gpu_model *g, int64_t *n);

// Per-model state of the GPU stages (the encoder's buffers, the decoder's): attached under a small integer key,
// freed by ac_gpu_model_free with its `free_fn`. Keys: 0 encoder, 1 decoder, 2.. free for later stages.
#define AC_GPU_SLOTS 8
void *ac_gpu_state(const ac_gpu_model *g, int key);
ac_status ac_gpu_state_attach(ac_gpu_model *g, int key, void *state, void (*free_fn)(void *));

#ifdef __cplusplus
}
#endif
#endif
