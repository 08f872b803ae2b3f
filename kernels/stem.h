// The ConvNeXt stem: Conv2d(1, C0, (kt, kf), stride = kernel, padding (pt, pf)) + channels_first LayerNorm (eps),
// conette convnext.py:207-211 (downsample_layers[0]); host/model.c runs ref_conv2d_patch + ref_layernorm.
// x: (R, F) bn0 output, clips packed by frames (foff_in, device, n + 1); y: (N0, C0) channels-last, clips packed
// by stem frames (foff_out): token (g * F0 + f) for stem frame g, F0 = (F + 2 pf - kf) / kf + 1.
// w_t: (kt * kf, C0), the stored (C0, 1, kt, kf) weight transposed by ac_stem_weight_t, so that the lanes of a
// warp (one channel each) read consecutive floats; b, ln_w, ln_b: (C0).
#ifndef AC_STEM_H
#define AC_STEM_H

#include <cuda_runtime.h>
#include <stdint.h>

#include "ac.h"

#ifdef __cplusplus
extern "C" {
#endif

// w (C0, taps) -> w_t (taps, C0), on the device, once per model
ac_status ac_stem_weight_t(const float *w, int C0, int taps, float *w_t, cudaStream_t stream);

ac_status ac_stem_conv_ln(const float *x, const int *foff_in, const int *foff_out, int n, int frames_out, int F,
                          int kt, int kf, int pt, int pf, const float *w_t, const float *b, const float *ln_w,
                          const float *ln_b, int C0, float eps, float *y, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
