// Unfused ConvNeXt pointwise MLP (see convnext_mlp_unfused.h). Workspace: a (N, 4C) fp32 hidden tensor, for BF16
// also its (N, 4C) bf16 copy (the second GEMM's operand), and a (N, C) fp32 branch output.
#include "common.cuh"
#include "convnext_mlp_unfused.h"
#include "linear.h"

#include <cuda_bf16.h>

static size_t al(size_t b) { return (b + 255) & ~(size_t)255; }

// GELU, erf form (nn.GELU()): 0.5 x (1 + erf(x / sqrt 2)); erff is within 2 ulp, ref_erf within 4.2e-7.
static __global__ void gelu_kernel(float *__restrict__ a, __nv_bfloat16 *__restrict__ ab, int64_t total) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const float v = a[i];
        const float g = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
        if (ab) ab[i] = __float2bfloat16_rn(g);
        else a[i] = g;
    }
}

static __global__ void residual_kernel(float *__restrict__ x, const float *__restrict__ t,
                                       const float *__restrict__ gamma, int64_t total, int C) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x)
        x[i] += gamma[i % C] * t[i];
}

static unsigned grid_for(int64_t total) {
    int64_t g = CEIL_DIV(total, (int64_t)256);
    return (unsigned)(g < 1 ? 1 : g > 1048576 ? 1048576 : g);
}

extern "C" size_t ac_convnext_mlp_unfused_workspace(ac_precision prec, int64_t N, int C) {
    size_t hid = (size_t)N * 4 * C;
    return al(sizeof(float) * hid) + (prec == AC_PREC_BF16 ? al(sizeof(__nv_bfloat16) * hid) : 0) +
           al(sizeof(float) * (size_t)N * C);
}

extern "C" ac_status ac_convnext_mlp_unfused(void *cublas, ac_precision prec, int64_t N, int C, const void *h,
                                             const void *pwconv1_w, const float *pwconv1_b, const void *pwconv2_w,
                                             const float *pwconv2_b, const float *gamma, float *x, void *workspace,
                                             size_t workspace_bytes, cudaStream_t stream) {
    if (N < 0 || C < 1 || !h || !pwconv1_w || !pwconv1_b || !pwconv2_w || !pwconv2_b || !gamma || !x ||
        (prec != AC_PREC_FP32 && prec != AC_PREC_BF16))
        return ac_fail(AC_ERR_INVALID_ARG, "convnext mlp: N %lld, C %d, precision %d or a NULL pointer", (long long)N,
                       C, (int)prec);
    if (N == 0) return AC_OK;
    if (!workspace || workspace_bytes < ac_convnext_mlp_unfused_workspace(prec, N, C))
        return ac_fail(AC_ERR_INTERNAL, "convnext mlp: workspace %zu bytes < %zu needed", workspace_bytes,
                       ac_convnext_mlp_unfused_workspace(prec, N, C));
    const int64_t hid = N * 4 * C;
    float *a = (float *)workspace;
    char *p = (char *)workspace + al(sizeof(float) * (size_t)hid);
    __nv_bfloat16 *ab = NULL;
    if (prec == AC_PREC_BF16) {
        ab = (__nv_bfloat16 *)p;
        p += al(sizeof(__nv_bfloat16) * (size_t)hid);
    }
    float *t = (float *)p;
    ac_status st = ac_linear(cublas, prec, N, C, 4 * C, h, pwconv1_w, pwconv1_b, 0, a, stream);
    if (st) return st;
    gelu_kernel<<<grid_for(hid), 256, 0, stream>>>(a, ab, hid);
    KERNEL_CHECK();
    st = ac_linear(cublas, prec, N, 4 * C, C, ab ? (const void *)ab : (const void *)a, pwconv2_w, pwconv2_b, 0, t,
                   stream);
    if (st) return st;
    residual_kernel<<<grid_for(N * C), 256, 0, stream>>>(x, t, gamma, N * C, C);
    KERNEL_CHECK();
    return AC_OK;
}
