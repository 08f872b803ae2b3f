// The GPU engine as plain C code sees it: the few entry points the CLI needs, without CUDA types, so that host
// code compiles in every build. With CUDA they are kernels/gpu_model.cu and kernels/gpu_caption.cu (which include
// this header too, so that a prototype drifting from its definition fails to compile); in a CPU-only build
// (-DAC_CUDA=OFF) host/gpu_none.c answers each with "built without CUDA".
#ifndef AC_GPU_API_H
#define AC_GPU_API_H

#include "ac.h"
#include "../kernels/gpu_types.h"
#include "model_file.h"

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ac_gpu_model ac_gpu_model;
ac_status ac_gpu_model_load(const char *path, int device, ac_precision prec, ac_gpu_model **out);
void ac_gpu_model_free(ac_gpu_model *g);
const ac_model_config *ac_gpu_model_config(const ac_gpu_model *g);
ac_status ac_gpu_caption_clips(ac_gpu_model *g, int n, const float *const *x, const int64_t *n_samples,
                               const ac_decode_params *p, ac_caption *out);

#ifdef __cplusplus
}
#endif
#endif
