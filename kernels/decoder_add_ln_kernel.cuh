// The residual add + LayerNorm kernel (one warp per row); included by kernels/decoder_add_ln.cu (see there)
// and by tests/emu/decoder_ops_emu.cpp, which runs it on the CPU against host/ref/ref_ops.c ref_layernorm.
// The sublayer's output y may come as `chunks` partial sums (planes of max_rows x D, a split-K linear's) and
// without its bias: y = ((y[0] + y[1]) + ...) + bias, summed in that order (chunks 1, no bias: y as it is).
#pragma once

__global__ void add_ln_kernel(float *x, const float *y, int chunks, const float *bias, int max_rows, const int *d_rows,
                              int D, const float *w, const float *b, float eps) {
    const int r = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (r >= (d_rows ? min(*d_rows, max_rows) : max_rows)) return;  // whole warps leave together
    float *xr = x + (size_t)r * D;
    const float *yr = y + (size_t)r * D;
    const size_t plane = (size_t)max_rows * D;
    double s = 0;
    for (int i = lane; i < D; i += 32) {
        float yv = yr[i];
        for (int z = 1; z < chunks; z++) yv += yr[z * plane + i];
        if (bias) yv += bias[i];
        const float v = xr[i] + yv;
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
