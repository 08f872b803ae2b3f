// See gather.h.
#include "gather.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define GATHER_PARALLEL_MIN ((size_t)8 << 20)
#define GATHER_MAX_THREADS 8

void ac_gather_copy(void *dst, int n, const void *const *src, const size_t *bytes) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += bytes[i];
    int nt = omp_get_max_threads();
    if (nt > GATHER_MAX_THREADS) nt = GATHER_MAX_THREADS;
    size_t *off = total >= GATHER_PARALLEL_MIN && n > 1 && nt > 1 ? malloc(sizeof(size_t) * (size_t)n) : NULL;
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
