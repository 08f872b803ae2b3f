// y = x . W^T + b [ReLU] with cuBLAS (see linear.h). Row-major y (M, N) is column-major y^T (N, M) =
// W (col-major K x N, transposed) . x^T (col-major K x M).
#include "common.cuh"
#include "linear.h"
#include "decoder_linear.h"

#include <cublas_v2.h>

static __global__ void bias_fill_kernel(float *__restrict__ y, const float *__restrict__ b, int64_t total, int N) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = b[i % N];
}

static __global__ void relu_kernel(float *__restrict__ y, int64_t total) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = y[i] > 0.f ? y[i] : 0.f;
}

static unsigned grid_for(int64_t total) {
    int64_t g = CEIL_DIV(total, (int64_t)256);
    return (unsigned)(g < 1 ? 1 : g > 1048576 ? 1048576 : g);
}

extern "C" ac_status ac_linear(void *cublas, ac_precision prec, int64_t M, int K, int N, const void *x, const void *W,
                               const float *b, int relu, float *y, cudaStream_t stream) {
    if (!cublas || M < 0 || M > 0x7fffffff || K < 1 || N < 1 || !x || !W || !y ||
        (prec != AC_PREC_FP32 && prec != AC_PREC_BF16))
        return ac_fail(AC_ERR_INVALID_ARG, "linear: M %lld, K %d, N %d, precision %d or a NULL pointer",
                       (long long)M, K, N, (int)prec);
    if (M == 0) return AC_OK;
    const int64_t total = M * N;
    if (prec == AC_PREC_FP32) {
        // FP32 (validation): one fixed summation order per element whatever M is, so a clip's frames do not
        // depend on its batch (cuBLAS chooses its algorithm by M; see decoder_linear.h)
        ac_status st = ac_gpu_linear((const float *)x, (int)M, NULL, K, (const float *)W, NULL, NULL, b, N, 0, y, stream);
        if (st != AC_OK) return st;
        if (relu) {
            relu_kernel<<<grid_for(total), 256, 0, stream>>>(y, total);
            KERNEL_CHECK();
        }
        return AC_OK;
    }
    cublasHandle_t h = (cublasHandle_t)cublas;
    CUBLAS_CHECK(cublasSetStream(h, stream));
    if (b) {
        bias_fill_kernel<<<grid_for(total), 256, 0, stream>>>(y, b, total, N);
        KERNEL_CHECK();
    }
    const float one = 1.0f, beta = b ? 1.0f : 0.0f;
    if (prec == AC_PREC_FP32)
        CUBLAS_CHECK(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, N, (int)M, K, &one, (const float *)W, K,
                                 (const float *)x, K, &beta, y, N));
    else
        CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, N, (int)M, K, &one, W, CUDA_R_16BF, K, x, CUDA_R_16BF, K,
                                  &beta, y, CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    if (relu) {
        relu_kernel<<<grid_for(total), 256, 0, stream>>>(y, total);
        KERNEL_CHECK();
    }
    return AC_OK;
}
