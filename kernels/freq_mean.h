// Frame embeddings: mean over frequency of the last stage, conette convnext.py:302-315 (x.mean(dim=freq));
// host/model.c sums in double then divides. x: (frames * F, C) channels-last, token g * F + f; y: (frames, C).
// Packed clips need no offsets here: every clip's frame owns its F tokens.
#ifndef AC_FREQ_MEAN_H
#define AC_FREQ_MEAN_H

#include <cuda_runtime.h>
#include <stdint.h>

#include "ac.h"

#ifdef __cplusplus
extern "C" {
#endif

ac_status ac_freq_mean(const float *x, int64_t frames, int F, int C, float *y, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
