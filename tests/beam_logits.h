// Scripted logits for the beam-search tests (tests/test_cuda_beam.c on a GPU, tests/emu/beam_search_emu.cpp on the
// CPU stand-in runtime): a deterministic function of (seed, clip, prefix), so the device search and the CPU
// reference see the same logits whatever order they ask in. Patterns cycle over the clips of a case: ties
// (values on a 0.5 grid), all equal, continuous, EOS boosted on some prefixes, EOS winning at once, EOS never
// winning (every hypothesis forced to finish at the maximum length). C and C++.
#ifndef AC_TEST_BEAM_LOGITS_H
#define AC_TEST_BEAM_LOGITS_H

#include <stdint.h>

enum { PAT_TIES, PAT_EQUAL, PAT_CONT, PAT_EOS_SOME, PAT_EOS_ALL, PAT_NO_EOS, PAT_N };

typedef struct {
    uint32_t seed;
    int V, eos, maxp, base_pattern;
} gen;

static inline uint32_t mix(uint32_t h, uint32_t x) {
    h ^= x + 0x9e3779b9u + (h << 6) + (h >> 2);
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    return h ^ (h >> 16);
}

static inline void gen_logits(const gen *g, int clip, const int *prefix, int len, float *out) {
    uint32_t h = mix(g->seed, (uint32_t)clip);
    for (int t = 0; t < len; t++) h = mix(h, (uint32_t)prefix[t]);
    const int pat = (g->base_pattern + clip) % PAT_N;
    for (int v = 0; v < g->V; v++) {
        uint32_t u = mix(h, (uint32_t)v);
        switch (pat) {
        case PAT_EQUAL: out[v] = 0.25f; break;
        case PAT_CONT: out[v] = (float)(u >> 8) * (8.0f / 16777216.0f) - 4.0f; break;
        default: out[v] = (float)(u % 8) * 0.5f - 2.0f; break;
        }
    }
    if (pat == PAT_EOS_SOME && h % 3 == 0) out[g->eos] += 3.0f;
    if (pat == PAT_EOS_ALL) out[g->eos] = 20.0f;
    if (pat == PAT_NO_EOS) out[g->eos] = -40.0f;
}

#endif
