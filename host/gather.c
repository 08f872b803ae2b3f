// See gather.h.
#include "gather.h"

#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define GATHER_PARALLEL_MIN ((size_t)8 << 20)
#define GATHER_MAX_THREADS 8

// Threads for a gather that reads total_bytes from n buffers: 1 below 8 MiB or for one buffer, else up to 8.
static int gather_threads(size_t total_bytes, int n) {
    int nt = omp_get_max_threads();
    if (nt > GATHER_MAX_THREADS) nt = GATHER_MAX_THREADS;
    return total_bytes >= GATHER_PARALLEL_MIN && n > 1 ? nt : 1;
}

void ac_gather_copy(void *dst, int n, const void *const *src, const size_t *bytes) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += bytes[i];
    const int nt = gather_threads(total, n);
    size_t *off = nt > 1 ? malloc(sizeof(size_t) * (size_t)n) : NULL;
    if (!off) {  // small, one core, or no memory for the offsets: in order, one thread
        char *d = (char *)dst;
        for (int i = 0; i < n; i++) {
            memcpy(d, src[i], bytes[i]);
            d += bytes[i];
        }
        return;
    }
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        off[i] = o;
        o += bytes[i];
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int i = 0; i < n; i++) memcpy((char *)dst + off[i], src[i], bytes[i]);
    free(off);
}

#define PACK_BLOCK 4096  // samples checked before giving up: ~16 KB, a clip's first block for resampled audio

// 1 when x[0..m) all pack exactly. Branch-free so that GCC vectorises it (the caller stops per block): the
// round-to-integer is the 1.5 * 2^23 trick, exact for |v * 32768| <= 2^22; anything else (a fraction, out of
// range, inf, NaN, -0.0) gives a k whose float is not v bit for bit, or a k outside int16.
__attribute__((target_clones("avx2", "default"))) static int pack_block(int16_t *restrict q, const float *restrict x, int64_t m) {
    uint32_t bad = 0;
    for (int64_t j = 0; j < m; j++) {
        const float v = x[j];
        const float t = v * 32768.0f + 12582912.0f;  // v * 32768 is exact: a power of two
        uint32_t bt, bv, bb;
        memcpy(&bt, &t, 4);
        const int32_t k = (int32_t)(bt - 0x4B400000u);  // bits(12582912.0f): t's mantissa holds round(v * 32768)
        const float back = (float)k * (1.0f / 32768.0f);  // what the device's int16 path reads
        memcpy(&bv, &v, 4);
        memcpy(&bb, &back, 4);
        bad |= (bv ^ bb) | (((uint32_t)k + 32768u) >> 16);
        q[j] = (int16_t)k;
    }
    return bad == 0;
}

static int pack_clip(int16_t *dst, const float *x, int64_t m, atomic_int *failed) {
    for (int64_t j = 0; j < m; j += PACK_BLOCK) {
        if (failed && atomic_load_explicit(failed, memory_order_relaxed)) return 0;
        if (!pack_block(dst + j, x + j, m - j < PACK_BLOCK ? m - j : PACK_BLOCK)) return 0;
    }
    return 1;
}

int ac_gather_s16_exact(int16_t *dst, int n, const float *const *src, const int64_t *count) {
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += count[i];
    const int nt = gather_threads(sizeof(float) * (size_t)total, n);  // counted in the float bytes read
    int64_t *off = nt > 1 ? malloc(sizeof(int64_t) * (size_t)n) : NULL;
    if (!off) {
        int64_t o = 0;
        for (int i = 0; i < n; i++) {
            if (!pack_clip(dst + o, src[i], count[i], NULL)) return 0;
            o += count[i];
        }
        return 1;
    }
    int64_t o = 0;
    for (int i = 0; i < n; i++) {
        off[i] = o;
        o += count[i];
    }
    atomic_int failed = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int i = 0; i < n; i++)
        if (!pack_clip(dst + off[i], src[i], count[i], &failed)) atomic_store_explicit(&failed, 1, memory_order_relaxed);
    free(off);
    return !atomic_load(&failed);
}
