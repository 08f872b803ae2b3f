// Gathering many host buffers into one (the GPU encoder's pinned staging area: one DMA per batch instead of one
// per clip). Plain C, OpenMP.
#ifndef AC_GATHER_H
#define AC_GATHER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Copies src[0..n) (bytes[i] each) one after another into dst. Below 8 MiB in total one thread does it; above,
// up to 8 OpenMP threads take whole buffers. One core moves ~8 GB/s: a batch of 256 clips of 10 s as float PCM
// (328 MB) took 40 ms serially on the 2-core dev VM (32 ms with both cores, its memory's limit), next to ~0.25 s
// of encoder time at 1,000 clips/s, and a larger share as that drops; a 16-core GPU host has the bandwidth for
// more threads.
void ac_gather_copy(void *dst, int n, const void *const *src, const size_t *bytes);

// The same gather for float PCM, packed to int16 when that loses nothing: dst gets q = v * 32768 for every sample
// of src[0..n) (count[i] each, one after another) and 1 is returned when every sample is bit for bit the float the
// device's int16 path reads back, (float)q * (1 / 32768.0f) (kernels/logmel.cu pcm_at): q in [-32768, 32767],
// no fraction, no -0.0, no NaN. Otherwise 0, at the first block that fails, and dst is garbage: gather the floats
// instead. Decoded 16-bit files at the model's rate and channel count pass; resampled or mixed-down audio fails in
// its first block, so trying costs little. Half the bytes cross PCIe and are written to the pinned staging area
// (issue #5: "audio crosses PCIe as int16"). Threads as ac_gather_copy.
int ac_gather_s16_exact(int16_t *dst, int n, const float *const *src, const int64_t *count);

#ifdef __cplusplus
}
#endif
#endif
