// Stem conv (kernel = stride, zero padding) + LayerNorm over channels, one warp per output token (see stem.h).
// The patch (kt * kf <= 64 taps) and the token's C0 conv outputs are staged in shared memory, then normalised
// by the warp. Lane = channel, so the weights are read tap-major (w_t): one coalesced 128-byte row per tap and
// warp, where the stored channel-major layout made every load touch 32 lines. Mirrors ref_conv2d_patch (bias
// first, then the taps) + ref_layernorm.
#include "common.cuh"
#include "enc_common.cuh"
#include "stem.h"

#define STEM_WARPS 4
#define STEM_MAX_TAPS 64

// KT, KF, C0T: the kernel size and width as compile-time constants (CoNeTTE's 4 x 4 stem of 96 channels), 0 for
// the runtime ones. With constants a tap's row and column are shifts and every weight load has an immediate offset:
// the runtime division by kf alone took ~130 integer instructions per token and warp (cuobjdump, sm_90).
template <int KT, int KF, int C0T>
static __global__ void stem_kernel(const float *__restrict__ x, const int *__restrict__ foff_in,
                                   const int *__restrict__ foff_out, int n, int64_t tokens, int F, int F0, int kt_,
                                   int kf_, int pt, int pf, const float *__restrict__ w_t, const float *__restrict__ b,
                                   const float *__restrict__ ln_w, const float *__restrict__ ln_b, int C0_, float eps,
                                   float *__restrict__ y) {
    extern __shared__ float sm[];
    const int kt = KT ? KT : kt_, kf = KF ? KF : kf_, C0 = C0T ? C0T : C0_;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float *patch = sm + warp * (STEM_MAX_TAPS + C0), *v = patch + STEM_MAX_TAPS;
    const int64_t tok = (int64_t)blockIdx.x * STEM_WARPS + warp;
    if (tok >= tokens) return;  // whole warp leaves together; no block-wide barrier follows
    const int g = (int)(tok / F0), f0 = (int)(tok % F0);
    const int c = ac_clip_of(foff_out, n, g);
    const int t0 = g - foff_out[c], row0 = foff_in[c], T = foff_in[c + 1] - row0;
    const int taps = kt * kf;
    for (int p = lane; p < taps; p += 32) {
        const int ts = t0 * kt + p / kf - pt, fs = f0 * kf + p % kf - pf;
        patch[p] = ts >= 0 && ts < T && fs >= 0 && fs < F ? __ldg(x + (int64_t)(row0 + ts) * F + fs) : 0.f;
    }
    __syncwarp();
    for (int ch = lane; ch < C0; ch += 32) {
        float acc = __ldg(b + ch);
#pragma unroll(KT && KF ? KT * KF : 1)
        for (int p = 0; p < taps; p++) acc += __ldg(w_t + p * C0 + ch) * patch[p];
        v[ch] = acc;
    }
    __syncwarp();
    float mean, inv;
    ac_warp_ln_stats(v, C0, eps, &mean, &inv);
    float *out = y + tok * C0;
    for (int ch = lane; ch < C0; ch += 32) out[ch] = (v[ch] - mean) * inv * __ldg(ln_w + ch) + __ldg(ln_b + ch);
}

static __global__ void stem_weight_t_kernel(const float *__restrict__ w, int C0, int taps, float *__restrict__ w_t) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < taps * C0) w_t[i] = w[(i % C0) * taps + i / C0];  // w_t[p * C0 + c] = w[c * taps + p]
}

extern "C" ac_status ac_stem_weight_t(const float *w, int C0, int taps, float *w_t, cudaStream_t stream) {
    if (C0 < 1 || taps < 1 || !w || !w_t)
        return ac_fail(AC_ERR_INVALID_ARG, "stem weight: C0 %d, taps %d or a NULL pointer", C0, taps);
    stem_weight_t_kernel<<<CEIL_DIV(taps * C0, 256), 256, 0, stream>>>(w, C0, taps, w_t);
    KERNEL_CHECK();
    return AC_OK;
}

extern "C" ac_status ac_stem_conv_ln(const float *x, const int *foff_in, const int *foff_out, int n, int frames_out,
                                     int F, int kt, int kf, int pt, int pf, const float *w_t, const float *b,
                                     const float *ln_w, const float *ln_b, int C0, float eps, float *y,
                                     cudaStream_t stream) {
    const int F0 = (F + 2 * pf - kf) / kf + 1;
    if (n < 1 || frames_out < 0 || F < 1 || kt < 1 || kf < 1 || kt * kf > STEM_MAX_TAPS || pt < 0 || pf < 0 ||
        F0 < 1 || C0 < 1 || C0 > 4096 || !x || !foff_in || !foff_out || !w_t || !b || !ln_w || !ln_b || !y)
        return ac_fail(AC_ERR_INVALID_ARG, "stem: n %d, frames %d, F %d, kernel %dx%d (<= %d taps), padding %d,%d, "
                       "C0 %d (<= 4096) or a NULL pointer", n, frames_out, F, kt, kf, STEM_MAX_TAPS, pt, pf, C0);
    const int64_t tokens = (int64_t)frames_out * F0;
    if (tokens == 0) return AC_OK;
    const size_t smem = sizeof(float) * STEM_WARPS * (STEM_MAX_TAPS + C0);
    const bool conette = kt == 4 && kf == 4 && C0 == 96;
    void (*kern)(const float *, const int *, const int *, int, int64_t, int, int, int, int, int, int, const float *,
                 const float *, const float *, const float *, int, float, float *) =
        conette ? stem_kernel<4, 4, 96> : stem_kernel<0, 0, 0>;
    CUDA_CHECK(ac_smem_optin(kern, (int)smem));
    kern<<<(unsigned)CEIL_DIV(tokens, (int64_t)STEM_WARPS), 32 * STEM_WARPS, smem, stream>>>(
        x, foff_in, foff_out, n, tokens, F, F0, kt, kf, pt, pf, w_t, b, ln_w, ln_b, C0, eps, y);
    KERNEL_CHECK();
    return AC_OK;
}
