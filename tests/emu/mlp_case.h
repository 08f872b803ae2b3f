// A random ConvNeXt block MLP problem at the scales of a trained block, and the check of a kernel's x against a
// double-precision evaluation with the same fp16 rounding of the hidden activations: shared by the CPU runs of
// the fused MLP kernels (tests/emu/convnext_mlp_emu.cpp, convnext_mlp_mma_emu.cpp). Needs cuda_emu.h first.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "../../kernels/gelu.cuh"  // the kernels' GELU, its reciprocal an exact division here

struct mlp_case {
    int C, H;
    int64_t N;
    std::vector<__half> h, w1, w2;    // (N, C), (4C, C), (C, 4C)
    std::vector<float> b1, b2, gamma, x0;  // (4C), (C), (C), (N, C)
};

// xorshift64* stream, uniform in [-1, 1)
static inline float mlp_frand(uint64_t *s) {
    *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
    return (float)((double)((*s * 2685821657736338717ull) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

// h a LayerNorm output, pre-activations O(1), layer scale up to 1
static inline mlp_case mlp_make(int C, int64_t N, uint64_t *rng) {
    mlp_case p;
    p.C = C, p.H = 4 * C, p.N = N;
    p.h.resize((size_t)N * C), p.w1.resize((size_t)p.H * C), p.w2.resize((size_t)p.H * C);
    p.b1.resize(p.H), p.b2.resize(C), p.gamma.resize(C), p.x0.resize((size_t)N * C);
    for (auto &v : p.h) v = __float2half_rn(1.7f * mlp_frand(rng));
    for (auto &v : p.w1) v = __float2half_rn(1.7f / sqrtf((float)C) * mlp_frand(rng));
    for (auto &v : p.w2) v = __float2half_rn(1.7f / sqrtf((float)p.H) * mlp_frand(rng));
    for (auto &v : p.b1) v = 0.5f * mlp_frand(rng);
    for (auto &v : p.b2) v = 0.2f * mlp_frand(rng);
    for (auto &v : p.gamma) v = mlp_frand(rng);
    for (auto &v : p.x0) v = mlp_frand(rng);
    return p;
}

// Worst |x - want| over the N rows as a share of its budget (NaN, e.g. an unwritten element, sticks): fp32
// accumulation differs from the double sum by ~1e-6 of sum|t|, and it can flip the fp16 rounding of a hidden
// value (one fp16 ulp of one term): 1e-3 of sum|t| covers both; an indexing slip (a wrong, missing or doubled
// term) is of the order of sum|t| / sqrt(4C).
static inline double mlp_worst(const mlp_case &p, const float *x) {
    const int C = p.C, H = p.H;
    double worst = 0;
    std::vector<double> hid(H);
    for (int64_t r = 0; r < p.N; r++) {
        for (int j = 0; j < H; j++) {
            double s = 0;
            for (int k = 0; k < C; k++)
                s += (double)__half2float(p.h[r * C + k]) * __half2float(p.w1[(size_t)j * C + k]);
            hid[j] = __half2float(__float2half_rn(ac_gelu_erf_fast((float)s + p.b1[j])));
        }
        for (int c = 0; c < C; c++) {
            double y = p.b2[c], a = std::fabs(p.b2[c]);
            for (int j = 0; j < H; j++) {
                const double t = hid[j] * __half2float(p.w2[(size_t)c * H + j]);
                y += t, a += std::fabs(t);
            }
            const double e = std::fabs(x[r * C + c] - (p.x0[r * C + c] + p.gamma[c] * y)) /
                             (std::fabs(p.gamma[c]) * a * 1e-3 + 1e-6);
            if (!(e <= worst)) worst = e;
        }
    }
    return worst;
}
