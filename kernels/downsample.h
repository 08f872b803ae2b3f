// ConvNeXt downsample between stages: channels_first LayerNorm (eps) then Conv2d(Cin, Cout, 2, stride 2),
// conette convnext.py:212-217 (downsample_layers[1..3]); host/model.c runs ref_layernorm + ref_conv2d_patch.
// Done as LN + im2col (this file) and one GEMM (ac_gpu_linear, kernels/decoder_linear.h: fp32 tiles, or in BF16
// mode split bf16 products) against the weight reordered to (Cout, 2, 2, Cin) so a column block is one source
// token's channels.
// x: (N, Cin) channels-last, clips packed by frames (foff_in) on a (frames, F) grid; output grid
// (frames', F / 2) with foff_out (frames' = floor(T / 2) per clip: odd last rows/columns are dropped, as the
// conv does). cols: (N', 4 Cin) float in both precisions.
#ifndef AC_DOWNSAMPLE_H
#define AC_DOWNSAMPLE_H

#include <cuda_runtime.h>
#include <stdint.h>

#include "ac.h"
#include "gpu_types.h"

#ifdef __cplusplus
extern "C" {
#endif

// wr (Cout, 2, 2, Cin) <- w (Cout, Cin, 2, 2); wr_bf16 (same layout, bf16) too when not NULL. On the device.
ac_status ac_downsample_weight_reorder(const float *w, int Cout, int Cin, float *wr, void *wr_bf16,
                                       cudaStream_t stream);

ac_status ac_downsample_ln_im2col(const float *x, const int *foff_in, const int *foff_out, int n, int frames_out,
                                  int F, int Cin, const float *ln_w, const float *ln_b, float eps, float *cols,
                                  cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
