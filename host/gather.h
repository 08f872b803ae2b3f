// Gathering many host buffers into one (the GPU encoder's pinned staging area: one DMA per batch instead of one
// per clip). Plain C, OpenMP.
#ifndef AC_GATHER_H
#define AC_GATHER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Copies src[0..n) (bytes[i] each) one after another into dst. Below 8 MiB in total one thread does it; above,
// up to 8 OpenMP threads take whole buffers. One core moves ~8 GB/s: a batch of 256 clips of 10 s as float PCM
// (328 MB) took 40 ms serially on the 2-core dev VM (32 ms with both cores, its memory's limit), next to ~0.25 s
// of encoder time at 1,000 clips/s, and a larger share as that drops; a 16-core GPU host has the bandwidth for
// more threads.
void ac_gather_copy(void *dst, int n, const void *const *src, const size_t *bytes);

#ifdef __cplusplus
}
#endif
#endif
