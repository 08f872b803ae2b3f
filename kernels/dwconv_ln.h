// ConvNeXt block, first half: h = LayerNorm(dwconv7x7(x) + dw_b) over channels (eps), conette convnext.py:22-74
// (dwconv, permute, norm); host/model.c runs ref_dwconv7 + ref_layernorm. The pointwise MLP that follows
// (kernels/convnext_mlp.h) reads h and updates x in place.
// x: (N, C) fp32 channels-last residual stream of one stage, clips packed by frames (foff, device, n + 1) on a
// (frames, F) grid: each clip's zero padding of 3 is its own (time and frequency), never a neighbour's rows.
// dw_w49: (49, C) = the stored (C, 1, 7, 7) weight transposed by ac_dwconv7_weight_t, so the 32 lanes of a warp
// read 32 consecutive channels of one tap. h: (N, C), float for AC_PREC_FP32, for AC_PREC_BF16
// the MLP's fp16 operand type (kernels/convnext_mlp_operand.cuh: saturating at +-65504).
#ifndef AC_DWCONV_LN_H
#define AC_DWCONV_LN_H

#include <cuda_runtime.h>
#include <stdint.h>

#include "ac.h"
#include "gpu_types.h"

#ifdef __cplusplus
extern "C" {
#endif

// dw_w49 (49, C) <- dw_w (C, 1, 7, 7), on the device.
ac_status ac_dwconv7_weight_t(const float *dw_w, int C, float *dw_w49, cudaStream_t stream);

ac_status ac_dwconv7_ln(ac_precision out_prec, const float *x, const int *foff, int n, int frames, int F, int C,
                        const float *dw_w49, const float *dw_b, const float *ln_w, const float *ln_b, float eps,
                        void *h, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
