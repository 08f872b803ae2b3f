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

#define ATT_WARPS 4

__device__ __forceinline__ float dot_fixed(const float *a, const float *w, int K) {
    float acc[16];
#pragma unroll
    for (int l = 0; l < 16; l++) acc[l] = 0.0f;
    int k = 0;
    for (; k + 16 <= K; k += 16)
#pragma unroll
        for (int l = 0; l < 16; l++) acc[l] += a[k + l] * w[k + l];
    for (int l = 0; k < K; k++, l++) acc[l] += a[k] * w[k];
#pragma unroll
    for (int h = 8; h >= 1; h /= 2)
#pragma unroll
        for (int l = 0; l < h; l++) acc[l] += acc[l + h];
    return acc[0];
}

__device__ __forceinline__ float warp_max(float x) {
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}

__device__ __forceinline__ double warp_sum(double x) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

// softmax over sc[0..L-1] (scaled scores) in place -> probabilities, by one warp
__device__ __forceinline__ void warp_softmax(float *sc, int L) {
    const int lane = threadIdx.x & 31;
    float mx = -INFINITY;
    for (int l = lane; l < L; l += 32) mx = fmaxf(mx, sc[l]);
    mx = warp_max(mx);
    double s = 0;
    for (int l = lane; l < L; l += 32) {
        const float e = expf(sc[l] - mx);
        sc[l] = e;
        s += e;
    }
    s = warp_sum(s);
    __syncwarp();
    for (int l = lane; l < L; l += 32) sc[l] = (float)(sc[l] / s);
    __syncwarp();
}

__global__ void __launch_bounds__(ATT_WARPS * 32)
    attention_self_kernel(const float *qkv, float *cache, int *anc, int step, int max_steps, const int *row_off,
                          const int *n_live, int max_rows, int D, int hd, float scale, float *out) {
    extern __shared__ float sm[];
    const int c = blockIdx.x, h = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int live = n_live[c];
    if (live == 0) return;
    const int L = step + 1;
    float *sc = sm + warp * max_steps;
    for (int ru = warp; ru < live; ru += ATT_WARPS) {
        const int r = row_off[c] + ru;
        const float *qr = qkv + (size_t)r * 3 * D;
        const float *q = qr + h * hd;
        // this step's k | v into the cache (rows of other clips/beams only read earlier positions)
        float *dst = cache + ((size_t)step * max_rows + r) * 2 * D;
        for (int d = lane; d < hd; d += 32) {
            dst[h * hd + d] = qr[D + h * hd + d];
            dst[D + h * hd + d] = qr[2 * D + h * hd + d];
        }
        if (h == 0 && lane == 0) anc[(size_t)r * max_steps + step] = r;
        for (int t = lane; t < L; t += 32) {
            const float *k = t == step ? qr + D : cache + ((size_t)t * max_rows + anc[(size_t)r * max_steps + t]) * 2 * D;
            sc[t] = dot_fixed(q, k + h * hd, hd) * scale;
        }
        __syncwarp();
        warp_softmax(sc, L);
        for (int d = lane; d < hd; d += 32) {
            float acc = 0.0f;
            for (int t = 0; t < L; t++) {
                const float *v = t == step ? qr + 2 * D
                                           : cache + ((size_t)t * max_rows + anc[(size_t)r * max_steps + t]) * 2 * D + D;
                acc += sc[t] * v[h * hd + d];
            }
            out[(size_t)r * D + h * hd + d] = acc;
        }
        __syncwarp();
    }
}

__global__ void __launch_bounds__(ATT_WARPS * 32)
    attention_cross_kernel(const float *q, const float *mem_kv, const int *mem_off, const int *mem_len, int max_len,
                           const int *row_off, const int *n_live, int D, int hd, float scale, float *out) {
    extern __shared__ float sm[];
    const int c = blockIdx.x, h = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int live = n_live[c];
    if (live == 0) return;
    const int L = min(mem_len[c], max_len);
    // rows padded to hd + 1 floats: lanes reading different keys at the same d hit different banks
    const int ld = hd + 1;
    float *ks = sm, *vs = sm + (size_t)max_len * ld, *sc = vs + (size_t)max_len * ld + (size_t)warp * max_len;
    const float *base = mem_kv + (size_t)mem_off[c] * 2 * D + h * hd;
    for (int i = threadIdx.x; i < L * hd; i += blockDim.x) {
        const int l = i / hd, d = i % hd;
        ks[l * ld + d] = base[(size_t)l * 2 * D + d];
        vs[l * ld + d] = base[(size_t)l * 2 * D + D + d];
    }
    __syncthreads();
    for (int ru = warp; ru < live; ru += ATT_WARPS) {
        const int r = row_off[c] + ru;
        const float *qh = q + (size_t)r * D + h * hd;
        for (int l = lane; l < L; l += 32) sc[l] = dot_fixed(qh, ks + (size_t)l * ld, hd) * scale;
        __syncwarp();
        warp_softmax(sc, L);
        for (int d = lane; d < hd; d += 32) {
            float acc = 0.0f;
            for (int l = 0; l < L; l++) acc += sc[l] * vs[(size_t)l * ld + d];
            out[(size_t)r * D + h * hd + d] = acc;
        }
        __syncwarp();
    }
}

static ac_status smem_fits(const void *kernel, size_t bytes, const char *what) {
    int dev = 0, optin = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (bytes > (size_t)optin)
        return ac_fail(AC_ERR_INVALID_ARG, "%s: %zu bytes of shared memory needed, the device has %d (hint: shorter clips)",
                       what, bytes, optin);
    if (bytes > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
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

extern "C" ac_status ac_gpu_attention_cross(const float *q, const float *mem_kv, const int *mem_off, const int *mem_len,
                                            int max_mem_len, const int *row_off, const int *n_live, int n_clips, int D,
                                            int nhead, float *out, cudaStream_t stream) {
    if (!q || !mem_kv || !mem_off || !mem_len || !row_off || !n_live || !out || nhead < 1 || D < nhead ||
        D % nhead || max_mem_len < 1 || n_clips < 0)
        return ac_fail(AC_ERR_INVALID_ARG, "cross-attention: D %d, %d heads, memory length %d, %d clips", D, nhead,
                       max_mem_len, n_clips);
    if (n_clips == 0) return AC_OK;
    const int hd = D / nhead;
    const size_t smem = sizeof(float) * ((size_t)2 * max_mem_len * (hd + 1) + (size_t)ATT_WARPS * max_mem_len);
    ac_status st = smem_fits((const void *)attention_cross_kernel, smem, "cross-attention");
    if (st) return st;
    attention_cross_kernel<<<dim3(n_clips, nhead), ATT_WARPS * 32, smem, stream>>>(
        q, mem_kv, mem_off, mem_len, max_mem_len, row_off, n_live, D, hd, 1.0f / sqrtf((float)hd), out);
    KERNEL_CHECK();
    return AC_OK;
}
