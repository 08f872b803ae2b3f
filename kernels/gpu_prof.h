// AC_GPU_PROFILE=1: device time per part of a call, from CUDA events recorded between its parts on one stream
// (the encoder's and the decoder's profiles, kernels/gpu_encoder.cu and gpu_decoder.cu). A mark closes the span of
// its part that began at the previous mark; the first mark of a call opens it. Best effort: a failing CUDA call
// turns profiling off, never an error of the caller. C++ (kernels/*.cu) only.
#ifndef AC_GPU_PROF_H
#define AC_GPU_PROF_H

#include <cuda_runtime_api.h>

#define AC_PROF_MAX_PARTS 32

struct ac_prof {
    int on;                 // AC_GPU_PROFILE=1 when the caller's state was made (ac_prof_wanted), until a failure
    int n, cap, calls;      // marks of the current call, events made, calls summed
    cudaEvent_t *ev;        // (cap) events, made on first use and reused by every call
    int *part;              // (cap) the part each mark closes
    double ms[AC_PROF_MAX_PARTS];  // summed per part over the calls
};

// 1 if AC_GPU_PROFILE=1 in the environment
int ac_prof_wanted(void);
// Records the mark closing `part`'s span (part < AC_PROF_MAX_PARTS) on `stream`.
void ac_prof_mark(ac_prof *p, int part, cudaStream_t stream);
// Waits for the call's last mark and adds each span to its part: 1 if the call was counted (then calls grew).
// Drops the call's marks either way, as a failed call must.
int ac_prof_collect(ac_prof *p);
// The events and tables (not the struct).
void ac_prof_free(ac_prof *p);

#endif
