// y = x . W^T + b [ReLU] (see linear.h): ac_gpu_linear, then a ReLU pass.
#include "common.cuh"
#include "decoder_linear.h"
#include "linear.h"

static __global__ void relu_kernel(float *__restrict__ y, int64_t total) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = y[i] > 0.f ? y[i] : 0.f;
}

extern "C" ac_status ac_linear(int64_t M, int K, int N, const float *x, const float *W, const void *W_bf16,
                               const void *W_bf16_lo, const float *b, int relu, float *y, cudaStream_t stream) {
    if (M < 0 || M > 0x7fffffff || K < 1 || N < 1 || !x || !W || !y)
        return ac_fail(AC_ERR_INVALID_ARG, "linear: M %lld (< 2^31), K %d, N %d or a NULL pointer (hint: fewer or "
                       "shorter clips per batch)", (long long)M, K, N);
    if (M == 0) return AC_OK;
    ac_status st = ac_gpu_linear(x, (int)M, NULL, K, W, W_bf16, W_bf16_lo, b, N, 0, y, stream);
    if (st != AC_OK || !relu) return st;
    const int64_t total = M * N, g = CEIL_DIV(total, (int64_t)256);
    relu_kernel<<<(unsigned)(g > 1048576 ? 1048576 : g), 256, 0, stream>>>(y, total);
    KERNEL_CHECK();
    return AC_OK;
}
