// The ConvNeXt block MLP's tensor-core operand type in the reduced precision (AC_PREC_BF16): the block's
// LayerNorm output h (written by kernels/dwconv_ln.cu), pwconv1/pwconv2 weights (ac_convnext_mlp_weight) and the
// GELU'd hidden activations are all `ac_mlp_op`. Every MLP path (mma, split, wmma, unfused) takes it from here.
//
// Why fp16 and not bf16, though the mode is called bf16 after what the rest of it uses: on sm_80/sm_90 tensor
// cores both run at the same rate, and fp16 keeps 3 more significand bits (relative rounding 2^-11 vs 2^-8).
// bench/bf16_sim.py (the upstream model on the CPU, operands rounded as here) measured what that is worth: with
// bf16 MLP operands 93.0 % of 128 beam-3 captions matched fp32, with fp16 99.2 % (bench/RESULTS.md). What bf16
// would buy is range: fp16 ends at 65504. A ConvNeXt's LayerNorm outputs, weights and GELU outputs sit far below
// that (timm trains these blocks under fp16 autocast), and the conversions here SATURATE at +-65504 rather than
// become inf, so an outlier costs accuracy in its row, never a NaN caption; ac_convnext_mlp_weight refuses
// weights outside the range outright.
#pragma once

#ifndef AC_CUDA_EMU  // the CPU emulators (tests/emu) define __half themselves
#include <cuda_fp16.h>
#endif

typedef __half ac_mlp_op;

#define AC_MLP_OP_MAX 65504.0f
#define AC_MLP_OP_INF 65520.0f  // the smallest magnitude __float2half_rn rounds to inf (the midpoint past 65504)

// v clamped into fp16's finite range; NaN stays NaN (so poisoned inputs still show in the tests)
__device__ __forceinline__ float ac_mlp_op_saturate(float v) {
    return fabsf(v) > AC_MLP_OP_MAX ? copysignf(AC_MLP_OP_MAX, v) : v;
}

__device__ __forceinline__ ac_mlp_op ac_mlp_op_from_float(float v) { return __float2half_rn(ac_mlp_op_saturate(v)); }
