// The decode-step attention kernels (self-attention with KV cache + ancestor indirection, cross-attention per
// clip) and their warp helpers; included by kernels/attention_decode.cu (see there for the arithmetic, layouts
// and upstream lines) and by tests/emu/attention_decode_emu.cpp, which runs this same code on the CPU against
// host/ref/ref_ops.c ref_attend. Needs math.h and CUDA (or the emulator's stand-ins) before it.
// AC_DYNAMIC_SMEM(T, name) declares the dynamic shared memory (the emulator supplies its own).
#ifndef AC_DYNAMIC_SMEM
#define AC_DYNAMIC_SMEM(T, name) extern __shared__ __align__(16) T name[]
#endif
#pragma once

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
    AC_DYNAMIC_SMEM(float, sm);
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
    AC_DYNAMIC_SMEM(float, sm);
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
