// Events between the parts of a call, summed per part (see gpu_prof.h).
#include "gpu_prof.h"

#include <stdlib.h>

int ac_prof_wanted(void) {
    const char *e = getenv("AC_GPU_PROFILE");
    return e && e[0] == '1';
}

void ac_prof_mark(ac_prof *p, int part, cudaStream_t stream) {
    if (!p->on || part < 0 || part >= AC_PROF_MAX_PARTS) return;
    if (p->n == p->cap) {  // grown by doubling; events are made lazily below
        const int cap = p->cap ? 2 * p->cap : 256;
        cudaEvent_t *ev = (cudaEvent_t *)realloc(p->ev, sizeof(cudaEvent_t) * cap);
        if (ev) p->ev = ev;
        int *pp = ev ? (int *)realloc(p->part, sizeof(int) * cap) : NULL;
        if (pp) p->part = pp;
        if (!ev || !pp) {
            p->on = 0;
            return;
        }
        for (; p->cap < cap; p->cap++) p->ev[p->cap] = NULL;
    }
    cudaEvent_t *e = &p->ev[p->n];
    if ((!*e && cudaEventCreate(e) != cudaSuccess) || cudaEventRecord(*e, stream) != cudaSuccess) {
        p->on = 0;
        return;
    }
    p->part[p->n++] = part;
}

int ac_prof_collect(ac_prof *p) {
    int counted = 0;
    if (p->on && p->n > 0 && cudaEventSynchronize(p->ev[p->n - 1]) == cudaSuccess) {
        for (int k = 1; k < p->n; k++) {
            float ms = 0;
            if (cudaEventElapsedTime(&ms, p->ev[k - 1], p->ev[k]) == cudaSuccess) p->ms[p->part[k]] += ms;
        }
        p->calls++;
        counted = 1;
    }
    p->n = 0;
    return counted;
}

void ac_prof_free(ac_prof *p) {
    for (int i = 0; i < p->cap; i++)
        if (p->ev[i]) cudaEventDestroy(p->ev[i]);
    free(p->ev);
    free(p->part);
    p->ev = NULL;
    p->part = NULL;
    p->cap = p->n = 0;
}
