// Decode-step attention (see attention_decode.h), the arithmetic of host/ref/ref_ops.c ref_attend:
//   score_l = dot_fixed(q_h, k_l) / sqrt(hd)   (16 interleaved partial sums, fixed tree: the host's order)
//   e_l = expf(score_l - max), sum in double, p_l = (float)(e_l / sum), out_d = sum over l in order of p_l v_ld
// Layouts: qkv (rows, 3D) = q | k | v; q (rows, D); cache (steps, rows, 2D) = k | v; mem_kv (frames, 2D) = k | v;
// heads side by side (head h = columns h*hd .. h*hd+hd-1), as nn.MultiheadAttention splits them.
// Grid (clips, heads), ATT_WARPS warps per block, a warp per row. Cross-attention stages the clip's keys and
// values of the head in shared memory once for all its beams.
#include "attention_decode.h"
#include "common.cuh"

#include <math.h>

#include "attention_decode_kernel.cuh"

static ac_status smem_fits(const void *kernel, size_t bytes, const char *what) {
    int dev = 0, optin = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (bytes > (size_t)optin)
        return ac_fail(AC_ERR_INVALID_ARG, "%s: %zu bytes of shared memory needed, the device has %d (hint: shorter clips)",
                       what, bytes, optin);
    CUDA_CHECK(ac_smem_optin(kernel, (int)bytes));
    return AC_OK;
}

extern "C" ac_status ac_gpu_attention_self(const float *qkv, float *cache, int *anc, int step, int max_steps,
                                           const int *row_off, const int *n_live, int n_clips, int max_rows, int D,
                                           int nhead, float *out, cudaStream_t stream) {
    if (!qkv || !cache || !anc || !row_off || !n_live || !out || nhead < 1 || D < nhead || D % nhead || step < 0 ||
        step >= max_steps || n_clips < 0 || max_rows < 1)
        return ac_fail(AC_ERR_INVALID_ARG, "self-attention: D %d, %d heads, step %d of %d, %d clips, %d rows", D, nhead,
                       step, max_steps, n_clips, max_rows);
    if (n_clips == 0) return AC_OK;
    const int hd = D / nhead;
    const size_t smem = sizeof(float) * ATT_WARPS * (size_t)max_steps;
    ac_status st = smem_fits((const void *)attention_self_kernel, smem, "self-attention");
    if (st) return st;
    attention_self_kernel<<<dim3(n_clips, nhead), ATT_WARPS * 32, smem, stream>>>(
        qkv, cache, anc, step, max_steps, row_off, n_live, max_rows, D, hd, 1.0f / sqrtf((float)hd), out);
    KERNEL_CHECK();
    return AC_OK;
}

// shared memory of the cross-attention block for memories of up to L frames: one head's keys and values (rows
// padded to hd + 1 floats) and each warp's scores
static size_t cross_smem(int L, int hd) { return sizeof(float) * ((size_t)2 * L * (hd + 1) + (size_t)ATT_WARPS * L); }

extern "C" int ac_gpu_attention_cross_max_len(int D, int nhead) {
    int dev = 0, optin = 0;
    if (nhead < 1 || D < nhead || D % nhead || cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess)
        return 0;
    return (int)((size_t)optin / cross_smem(1, D / nhead));
}

extern "C" ac_status ac_gpu_attention_cross(const float *q, const float *mem_kv, const int *mem_off, const int *mem_len,
                                            int max_mem_len, const int *row_off, const int *n_live, int n_clips, int D,
                                            int nhead, float *out, cudaStream_t stream) {
    if (!q || !mem_kv || !mem_off || !mem_len || !row_off || !n_live || !out || nhead < 1 || D < nhead ||
        D % nhead || max_mem_len < 1 || n_clips < 0)
        return ac_fail(AC_ERR_INVALID_ARG, "cross-attention: D %d, %d heads, memory length %d, %d clips", D, nhead,
                       max_mem_len, n_clips);
    if (n_clips == 0) return AC_OK;
    const int hd = D / nhead;
    const size_t smem = cross_smem(max_mem_len, hd);
    ac_status st = smem_fits((const void *)attention_cross_kernel, smem, "cross-attention");
    if (st) return st;
    attention_cross_kernel<<<dim3(n_clips, nhead), ATT_WARPS * 32, smem, stream>>>(
        q, mem_kv, mem_off, mem_len, max_mem_len, row_off, n_live, D, hd, 1.0f / sqrtf((float)hd), out);
    KERNEL_CHECK();
    return AC_OK;
}
