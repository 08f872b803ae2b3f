// The residual add + LayerNorm kernel (one warp per row); included by kernels/decoder_add_ln.cu (see there)
// and by tests/emu/decoder_ops_emu.cpp, which runs it on the CPU against host/ref/ref_ops.c ref_layernorm.
#pragma once

__global__ void add_ln_kernel(float *x, const float *y, int max_rows, const int *d_rows, int D, const float *w,
                              const float *b, float eps) {
    const int r = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (r >= (d_rows ? min(*d_rows, max_rows) : max_rows)) return;  // whole warps leave together
    float *xr = x + (size_t)r * D;
    const float *yr = y + (size_t)r * D;
    double s = 0;
    for (int i = lane; i < D; i += 32) {
        const float v = xr[i] + yr[i];
        xr[i] = v;
        s += v;
    }
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    const double mean = s / D;
    double q = 0;
    for (int i = lane; i < D; i += 32) {
        const double d = xr[i] - mean;
        q += d * d;
    }
    for (int o = 16; o > 0; o >>= 1) q += __shfl_xor_sync(0xffffffffu, q, o);
    const double var = q / D;
    const float inv = (float)(1.0 / sqrt(var + eps)), fm = (float)mean;
    for (int i = lane; i < D; i += 32) xr[i] = (xr[i] - fm) * inv * w[i] + b[i];
}
