// The ConvNeXt block MLP (conette convnext.py:22-74; host/model.c encoder loop) unfused: GEMM -> bias + GELU(erf)
// -> GEMM -> epilogue kernel x += gamma * (y + pwconv2_b).
// x, y: (N, C) fp32; h: (N, C) fp32 or fp16; hidden: (rows, 4C) fp32 pre-activation (and its fp16 GELU output in
// the BF16 mode, convnext_mlp_operand.cuh), all row-major (channels-last), through the caller's workspace in
// chunks of rows.
// FP32 (validation) runs the GEMMs as ac_gpu_linear's fixed-order tiles (batch-invariant, see below). In the BF16
// mode this is the fallback for shapes the fused kernels are not built for, and the benchmark's unfused baseline:
// cuBLAS GemmEx on fp16 operands, GEMM1 writing fp32 so that bias + GELU round to fp16 once, as in the fused
// kernels.
#include <cublas_v2.h>
#include "common.cuh"
#include "convnext_mlp.h"
#include "convnext_mlp_operand.cuh"
#include "decoder_linear.h"
#include "gelu.cuh"

#include <pthread.h>
#include <stdlib.h>

// One cuBLAS handle per host thread and device, made on first use and kept until the thread ends (a thread-
// specific value whose destructor destroys them: a bulk run's worker threads end before the process, and each
// handle holds device memory): creating one costs milliseconds, far more than a call; a per-thread one needs no
// lock.
#define MLP_MAX_DEVICES 64
static pthread_key_t g_handles_key;
static pthread_once_t g_handles_once = PTHREAD_ONCE_INIT;
static int g_handles_key_ok;

static void destroy_handles(void *p) {
    cublasHandle_t *h = (cublasHandle_t *)p;
    for (int i = 0; i < MLP_MAX_DEVICES; i++)
        if (h[i]) {  // at thread exit: nothing left to report to; a handle is destroyed with its device current
            if (cudaSetDevice(i) == cudaSuccess) cublasDestroy(h[i]);
            else (void)cudaGetLastError();
        }
    free(h);
}
static void make_handles_key(void) { g_handles_key_ok = pthread_key_create(&g_handles_key, destroy_handles) == 0; }

static ac_status mlp_cublas(cudaStream_t stream, cublasHandle_t *out) {
    *out = NULL;
    int dev = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    if (dev < 0 || dev >= MLP_MAX_DEVICES)
        return ac_fail(AC_ERR_CUDA, "convnext_mlp: device %d beyond the %d this build handles (hint: set "
                       "CUDA_VISIBLE_DEVICES)", dev, MLP_MAX_DEVICES);
    pthread_once(&g_handles_once, make_handles_key);
    if (!g_handles_key_ok) return ac_fail(AC_ERR_INTERNAL, "convnext_mlp: pthread_key_create failed");
    cublasHandle_t *h = (cublasHandle_t *)pthread_getspecific(g_handles_key);
    if (!h) {
        if (!(h = (cublasHandle_t *)calloc(MLP_MAX_DEVICES, sizeof *h)))
            return ac_fail(AC_ERR_NOMEM, "convnext_mlp: out of host memory");
        if (pthread_setspecific(g_handles_key, h)) {
            free(h);
            return ac_fail(AC_ERR_INTERNAL, "convnext_mlp: pthread_setspecific failed");
        }
    }
    if (!h[dev]) CUBLAS_CHECK(cublasCreate(&h[dev]));
    CUBLAS_CHECK(cublasSetStream(h[dev], stream));
    *out = h[dev];
    return AC_OK;
}

static int mlp_grid(int n) {  // grid-stride kernels: enough blocks to fill any GPU, no more
    int b = (int)CEIL_DIV((int64_t)n, 256);
    return b < 8192 ? (b > 0 ? b : 1) : 8192;
}

// hid (rows, H) fp32 -> GELU(hid + b1) in place (FP32) ...
// Element counts of a chunk stay below 2^31 (the launcher sizes chunks so), so 32-bit indices: the 64-bit
// modulo would cost more than the memory traffic of this baseline.
static __global__ void bias_gelu_f32_kernel(float *hid, const float *b1, int n, int H) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        hid[i] = ac_gelu_erf(hid[i] + b1[i % H]);
}

// ... or into an fp16 copy, GEMM2's operand (BF16 mode).
static __global__ void bias_gelu_op_kernel(const float *pre, const float *b1, ac_mlp_op *out, int n, int H) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        out[i] = ac_mlp_op_from_float(ac_gelu_erf_fast(pre[i] + b1[i % H]));
}

// x (rows, C) += gamma * (y + b2): host/model.c adds the bias inside the Linear, then the scaled residual.
static __global__ void residual_kernel(float *x, const float *y, const float *b2, const float *gamma, int n, int C) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const int c = i % C;
        x[i] += gamma[c] * (y[i] + b2[c]);
    }
}

// Bytes of workspace per row of a chunk, and the row count of a chunk for a given workspace.
static size_t mlp_row_bytes(ac_precision prec, int C) {
    return (size_t)C * (prec == AC_PREC_BF16 ? 4 * 4 + 4 + 4 * 2 : 4 * 4 + 4);
}

#define MLP_WORKSPACE_CAP ((size_t)64 << 20)

extern "C" size_t ac_convnext_mlp_workspace(ac_precision prec, int64_t N, int C) {
    if (N <= 0 || C <= 0) return 0;
    const size_t per_row = mlp_row_bytes(prec, C);
    size_t rows = MLP_WORKSPACE_CAP / per_row;
    if (rows < 1) rows = 1;
    if ((int64_t)rows > N) rows = (size_t)N;
    return rows * per_row;
}

extern "C" ac_status ac_convnext_mlp_unfused(ac_precision prec, int64_t N, int C, const void *h,
                                             const void *pwconv1_w, const float *pwconv1_b, const void *pwconv2_w,
                                             const float *pwconv2_b, const float *gamma, float *x, void *workspace,
                                             size_t workspace_bytes, cudaStream_t stream) {
    ac_status st = ac_convnext_mlp_check_args("convnext_mlp_unfused", prec, N, C, h, pwconv1_w, pwconv1_b,
                                              pwconv2_w, pwconv2_b, gamma, x, workspace, workspace_bytes);
    if (st != AC_OK || N == 0) return st;
    cublasHandle_t handle = NULL;
    if ((st = mlp_cublas(stream, &handle)) != AC_OK) return st;

    const int H = 4 * C;
    const size_t per_row = mlp_row_bytes(prec, C);
    int64_t R = (int64_t)(workspace_bytes / per_row);
    if (R > N) R = N;
    if (R > (1 << 30) / H) R = (1 << 30) / H;  // int indices (kernels, cuBLAS) with room for the grid stride
    // workspace: hid (R, H) fp32 | y (R, C) fp32 | BF16 only: hid16 (R, H) fp16
    float *hid = (float *)workspace;
    float *y = hid + (size_t)R * H;
    ac_mlp_op *hid16 = (ac_mlp_op *)(y + (size_t)R * C);
    const float one = 1.0f, zero = 0.0f;
    const int bf = prec == AC_PREC_BF16;
    const cudaDataType_t in_t = bf ? CUDA_R_16F : CUDA_R_32F;
    const cublasComputeType_t ct = bf ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_PEDANTIC;
    const size_t in_size = bf ? 2 : 4;

    for (int64_t r0 = 0; r0 < N; r0 += R) {
        const int rows = (int)(N - r0 < R ? N - r0 : R);
        const void *hc = (const char *)h + (size_t)r0 * C * in_size;
        if (!bf) {
            // FP32 is the validation mode, whose answers must not depend on the batch: cuBLAS picks its algorithm
            // (split-K, tiles) by the row count, so a clip alone and in a batch differed in the last bits (seen
            // on an H200). ac_gpu_linear sums every element in one fixed order: GELU(h W1^T + b1), then W2.
            if ((st = ac_gpu_linear((const float *)hc, rows, NULL, C, (const float *)pwconv1_w, NULL, NULL, pwconv1_b,
                                    H, 1, hid, stream)) != AC_OK ||
                (st = ac_gpu_linear(hid, rows, NULL, H, (const float *)pwconv2_w, NULL, NULL, NULL, C, 0, y,
                                    stream)) != AC_OK)
                return st;
            const int nx = rows * C;
            residual_kernel<<<mlp_grid(nx), 256, 0, stream>>>(x + (size_t)r0 * C, y, pwconv2_b, gamma, nx, C);
            KERNEL_CHECK();
            continue;
        }
        // Column-major view: hid^T (H x rows) = W1 (H x C, row-major (H, C) read transposed) . h^T (C x rows).
        CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, H, rows, C, &one, pwconv1_w, in_t, C, hc,
                                      in_t, C, &zero, hid, CUDA_R_32F, H, ct, CUBLAS_GEMM_DEFAULT));
        const int nh = rows * H;
        if (bf) {
            bias_gelu_op_kernel<<<mlp_grid(nh), 256, 0, stream>>>(hid, pwconv1_b, hid16, nh, H);
            KERNEL_CHECK();
        } else {
            bias_gelu_f32_kernel<<<mlp_grid(nh), 256, 0, stream>>>(hid, pwconv1_b, nh, H);
            KERNEL_CHECK();
        }
        // y^T (C x rows) = W2 (C x H, row-major (C, H) read transposed) . GELU^T (H x rows).
        CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, C, rows, H, &one, pwconv2_w, in_t, H,
                                      bf ? (const void *)hid16 : (const void *)hid, in_t, H, &zero, y, CUDA_R_32F,
                                      C, ct, CUBLAS_GEMM_DEFAULT));
        const int nx = rows * C;
        residual_kernel<<<mlp_grid(nx), 256, 0, stream>>>(x + (size_t)r0 * C, y, pwconv2_b, gamma, nx, C);
        KERNEL_CHECK();
    }
    return AC_OK;
}
