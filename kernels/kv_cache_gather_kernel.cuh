// The KV-cache gather kernel (see kv_cache_gather.h); included by kernels/kv_cache_gather.cu and by
// tests/emu/attention_decode_emu.cpp. One block per (row, step, layer): a row's cached k | v at one position,
// copied from its source row; VEC: float4 copies.
#pragma once

template <bool VEC>
__global__ void kv_cache_gather_kernel(const float *__restrict__ src, float *__restrict__ dst, int64_t layer_stride,
                                       int max_rows, int width, const int *__restrict__ src_row,
                                       const int *__restrict__ d_rows) {
    const int r = blockIdx.x, t = blockIdx.y, l = blockIdx.z;
    if (r >= (d_rows ? min(*d_rows, max_rows) : max_rows)) return;
    const int64_t base = l * layer_stride + (int64_t)t * max_rows * width;
    const float *s = src + base + (int64_t)src_row[r] * width;
    float *d = dst + base + (int64_t)r * width;
    if (VEC) {
        for (int i = threadIdx.x; i < width / 4; i += blockDim.x) ((float4 *)d)[i] = ((const float4 *)s)[i];
    } else {
        for (int i = threadIdx.x; i < width; i += blockDim.x) d[i] = s[i];
    }
}
