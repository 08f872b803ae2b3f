// Depthwise 7x7 conv + bias + LayerNorm (see dwconv_ln.h). One block per frame row and chunk of its F columns
// (the whole row for ConvNeXt-Tiny: F x C = 5376 at every stage). Phase 1: each thread owns V channels (4, a
// float4, when C % 4 == 0 and the pointers are 16-byte aligned; else 1) of DW_S consecutive columns and keeps
// their sums in registers: per input row it loads the DW_S + 6 vectors those columns need once and each feeds up
// to 7 outputs, where a thread per output re-read its whole 7x7 neighbourhood (7 loads per FMA-group before,
// (DW_S + 6 + 7) / (7 DW_S) after). Sums are in ref_dwconv7's order: bias, then rows i, columns j; a row outside
// the clip is skipped, a column outside adds fma(w, 0, acc) = acc. Phase 2: the row's results, staged in shared
// memory (F x C floats), are normalised one token per warp and written coalesced along C.
#include "common.cuh"
#include "dwconv_ln.h"
#include "enc_common.cuh"

#define DW_S 7                   // output columns per thread: F = 56, 28, 14, 7 in ConvNeXt-Tiny are multiples
#define DW_SMEM_MAX (96 * 1024)  // a longer row is cut into column chunks (each token's LN needs only its own C)
#define DW_THREADS_MAX 256

#ifndef AC_DYNAMIC_SMEM
#define AC_DYNAMIC_SMEM(T, name) extern __shared__ __align__(16) T name[]
#endif

static __global__ void dw_weight_t_kernel(const float *__restrict__ w, int C, float *__restrict__ w49) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < 49 * C) w49[i] = w[(int64_t)(i % C) * 49 + i / C];  // w49[k * C + c] = w[c * 49 + k]
}

template <int V> struct dw_vec;
template <> struct dw_vec<1> {
    float v[1];
    static __device__ __forceinline__ dw_vec load(const float *p) { return {{__ldg(p)}}; }
};
template <> struct dw_vec<4> {
    float v[4];
    static __device__ __forceinline__ dw_vec load(const float *p) {
        const float4 q = __ldg(reinterpret_cast<const float4 *>(p));
        return {{q.x, q.y, q.z, q.w}};
    }
};

// One thread's strip: acc[q] += the 7 x 7 taps of output column fs0 + q, channels ch .. ch + V - 1, in
// ref_dwconv7's order. xrow(ts) is the first element of frame row ts. EDGE: some of the DW_S + 6 input columns
// fall outside [0, F) (they add fma(w, 0, acc)); an interior strip (6 of the 8 per row at F = 56) loads without a
// check per column. CT: C as a compile-time constant (ConvNeXt-Tiny's 96, 192, 384, 768; 0: the runtime C), so
// that every load's offset from its row's base (k C, (7 i + j) C) is an immediate: with runtime offsets and a
// check per column, ptxas spent 265 integer instructions per input row against 196 FMAs (cuobjdump, sm_90).
template <int V, int CT, bool EDGE>
static __device__ __forceinline__ void dw_strip(const float *__restrict__ x, int64_t row0, int t, int T, int F, int C_,
                                                int ch, int fs0, const float *__restrict__ w49,
                                                dw_vec<V> (&acc)[DW_S]) {
    const int C = CT ? CT : C_;
    const float *wc = w49 + ch;
#pragma unroll
    for (int i = 0; i < 7; i++) {
        const int ts = t + i - 3;
        if (ts < 0 || ts >= T) continue;
        const float *xrow = x + (row0 + ts) * F * (int64_t)C + ch;
        dw_vec<V> in[DW_S + 6];
        if (EDGE) {
#pragma unroll
            for (int k = 0; k < DW_S + 6; k++) {
                const int fs = fs0 + k - 3;
                if (fs >= 0 && fs < F) in[k] = dw_vec<V>::load(xrow + (int64_t)fs * C);
                else
#pragma unroll
                    for (int e = 0; e < V; e++) in[k].v[e] = 0.0f;
            }
        } else {
            const float *xs = xrow + (int64_t)(fs0 - 3) * C;  // columns fs0 - 3 .. fs0 + DW_S + 2, all inside
#pragma unroll
            for (int k = 0; k < DW_S + 6; k++) in[k] = dw_vec<V>::load(xs + k * C);
        }
#pragma unroll
        for (int j = 0; j < 7; j++) {
            const dw_vec<V> w = dw_vec<V>::load(wc + (i * 7 + j) * C);
#pragma unroll
            for (int q = 0; q < DW_S; q++)
#pragma unroll
                for (int e = 0; e < V; e++) acc[q].v[e] = fmaf(w.v[e], in[q + j].v[e], acc[q].v[e]);
        }
    }
}

template <int V, int CT, typename OutT>
static __global__ void dwconv_ln_kernel(const float *__restrict__ x, const int *__restrict__ foff, int n, int F,
                                        int C_, int FB, int nfc, const float *__restrict__ w49,
                                        const float *__restrict__ dw_b, const float *__restrict__ ln_w,
                                        const float *__restrict__ ln_b, float eps, OutT *__restrict__ h) {
    AC_DYNAMIC_SMEM(float, v);  // (fb, C): this block's conv results
    const int C = CT ? CT : C_;
    const int g = blockIdx.x / nfc, f0 = (blockIdx.x % nfc) * FB, fb = min(FB, F - f0);
    const int c = ac_clip_of(foff, n, g);
    const int row0 = foff[c], T = foff[c + 1] - row0, t = g - row0;
    const int G = C / V, strips = CEIL_DIV(fb, DW_S);
    for (int u = threadIdx.x; u < G * strips; u += blockDim.x) {
        const int ch = (u % G) * V, fs0 = f0 + (u / G) * DW_S;
        dw_vec<V> acc[DW_S];
        const dw_vec<V> bias = dw_vec<V>::load(dw_b + ch);
#pragma unroll
        for (int q = 0; q < DW_S; q++) acc[q] = bias;
        if (fs0 < 3 || fs0 + DW_S + 3 > F) dw_strip<V, CT, true>(x, row0, t, T, F, C, ch, fs0, w49, acc);
        else dw_strip<V, CT, false>(x, row0, t, T, F, C, ch, fs0, w49, acc);
#pragma unroll
        for (int q = 0; q < DW_S; q++)
            if (fs0 + q < f0 + fb)
#pragma unroll
                for (int e = 0; e < V; e++) v[(fs0 + q - f0) * C + ch + e] = acc[q].v[e];
    }
    __syncthreads();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    for (int k = warp; k < fb; k += warps) {
        const float *vk = v + k * C;
        float mean, inv;
        ac_warp_ln_stats(vk, C, eps, &mean, &inv);
        OutT *out = h + ((int64_t)g * F + f0 + k) * C;
        for (int ch = lane; ch < C; ch += 32)
            out[ch] = ac_from_float<OutT>((vk[ch] - mean) * inv * __ldg(ln_w + ch) + __ldg(ln_b + ch));
    }
}

template <int V, int CT, typename OutT>
static ac_status launch(const float *x, const int *foff, int n, int frames, int F, int C, const float *w49,
                        const float *dw_b, const float *ln_w, const float *ln_b, float eps, OutT *h,
                        cudaStream_t stream) {
    // columns per block: the whole row when its F x C floats fit, else chunks of DW_S columns
    int FB = F;
    if ((size_t)F * C * sizeof(float) > DW_SMEM_MAX) FB = (int)(DW_SMEM_MAX / (sizeof(float) * C)) / DW_S * DW_S;
    if (FB < 1) FB = 1;
    const int nfc = CEIL_DIV(F, FB), work = (C / V) * CEIL_DIV(FB, DW_S);
    const int threads = work >= DW_THREADS_MAX ? DW_THREADS_MAX : CEIL_DIV(work, 32) * 32;
    const size_t smem = sizeof(float) * (size_t)FB * C;
    const int64_t blocks = (int64_t)frames * nfc;
    if (blocks > 0x7fffffff) return ac_fail(AC_ERR_INVALID_ARG, "dwconv7+LN: %lld blocks (hint: smaller batches)", (long long)blocks);
    CUDA_CHECK(ac_smem_optin(dwconv_ln_kernel<V, CT, OutT>, (int)smem));
    dwconv_ln_kernel<V, CT, OutT><<<(unsigned)blocks, threads, smem, stream>>>(x, foff, n, F, C, FB, nfc, w49, dw_b, ln_w,
                                                                         ln_b, eps, h);
    KERNEL_CHECK();
    return AC_OK;
}

// float4 rows: ConvNeXt-Tiny's widths get the compile-time C (immediate load offsets), any other C the runtime one
template <typename OutT>
static ac_status launch_vec4(const float *x, const int *foff, int n, int frames, int F, int C, const float *w49,
                             const float *dw_b, const float *ln_w, const float *ln_b, float eps, OutT *h,
                             cudaStream_t stream) {
    if (C == 96) return launch<4, 96>(x, foff, n, frames, F, C, w49, dw_b, ln_w, ln_b, eps, h, stream);
    if (C == 192) return launch<4, 192>(x, foff, n, frames, F, C, w49, dw_b, ln_w, ln_b, eps, h, stream);
    if (C == 384) return launch<4, 384>(x, foff, n, frames, F, C, w49, dw_b, ln_w, ln_b, eps, h, stream);
    if (C == 768) return launch<4, 768>(x, foff, n, frames, F, C, w49, dw_b, ln_w, ln_b, eps, h, stream);
    return launch<4, 0>(x, foff, n, frames, F, C, w49, dw_b, ln_w, ln_b, eps, h, stream);
}

extern "C" ac_status ac_dwconv7_weight_t(const float *dw_w, int C, float *dw_w49, cudaStream_t stream) {
    if (C < 1 || !dw_w || !dw_w49) return ac_fail(AC_ERR_INVALID_ARG, "dwconv weight: C %d or a NULL pointer", C);
    dw_weight_t_kernel<<<CEIL_DIV(49 * C, 256), 256, 0, stream>>>(dw_w, C, dw_w49);
    KERNEL_CHECK();
    return AC_OK;
}

extern "C" ac_status ac_dwconv7_ln(ac_precision out_prec, const float *x, const int *foff, int n, int frames, int F,
                                   int C, const float *dw_w49, const float *dw_b, const float *ln_w, const float *ln_b,
                                   float eps, void *h, cudaStream_t stream) {
    if (n < 1 || frames < 0 || F < 1 || C < 1 || C > 1536 || (out_prec != AC_PREC_FP32 && out_prec != AC_PREC_BF16) ||
        !x || !foff || !dw_w49 || !dw_b || !ln_w || !ln_b || !h)
        return ac_fail(AC_ERR_INVALID_ARG, "dwconv7+LN: n %d, frames %d, F %d, C %d (<= 1536), precision %d or a "
                       "NULL pointer", n, frames, F, C, (int)out_prec);
    if (frames == 0) return AC_OK;
    const int vec4 = C % 4 == 0 && (uintptr_t)x % 16 == 0 && (uintptr_t)dw_w49 % 16 == 0 && (uintptr_t)dw_b % 16 == 0;
    if (out_prec == AC_PREC_FP32)
        return vec4 ? launch_vec4(x, foff, n, frames, F, C, dw_w49, dw_b, ln_w, ln_b, eps, (float *)h, stream)
                    : launch<1, 0>(x, foff, n, frames, F, C, dw_w49, dw_b, ln_w, ln_b, eps, (float *)h, stream);
    return vec4 ? launch_vec4(x, foff, n, frames, F, C, dw_w49, dw_b, ln_w, ln_b, eps, (ac_mlp_op *)h, stream)
                : launch<1, 0>(x, foff, n, frames, F, C, dw_w49, dw_b, ln_w, ln_b, eps, (ac_mlp_op *)h, stream);
}
