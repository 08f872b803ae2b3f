// Device helpers shared by the encoder kernels: which clip a packed frame belongs to, and the warp-per-token
// LayerNorm (biased variance, two passes over values staged in shared memory) that the stem, the depthwise
// block and the downsamples use (conette norm.py:35-40; F.layer_norm over channels).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "convnext_mlp_operand.cuh"

// Largest k with off[k] <= g: the clip owning packed frame g (off: (n + 1) non-decreasing, off[0] = 0,
// g < off[n]); an empty clip never wins because a later clip with the same offset is preferred.
static __device__ __forceinline__ int ac_clip_of(const int *__restrict__ off, int n, int g) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) >> 1;
        if (__ldg(off + mid) <= g) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

static __device__ __forceinline__ float ac_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// v: this warp's C values in shared memory (written by this warp, __syncwarp()ed). Returns mean and 1/sqrt(var+eps)
// in the same float arithmetic as ref_layernorm's final step (which carries its sums in double: the difference is
// ~1e-7 relative for C <= 768, far inside the budgets).
static __device__ __forceinline__ void ac_warp_ln_stats(const float *v, int C, float eps, float *mean, float *inv) {
    const int lane = threadIdx.x & 31;
    float s = 0.f;
    for (int c = lane; c < C; c += 32) s += v[c];
    const float m = ac_warp_sum(s) / (float)C;
    float q = 0.f;
    for (int c = lane; c < C; c += 32) {
        float d = v[c] - m;
        q += d * d;
    }
    const float var = ac_warp_sum(q) / (float)C;
    *mean = m;
    *inv = 1.0f / sqrtf(var + eps);
}

template <typename T> static __device__ __forceinline__ T ac_from_float(float v);
template <> __device__ __forceinline__ float ac_from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half ac_from_float<__half>(float v) { return ac_mlp_op_from_float(v); }
