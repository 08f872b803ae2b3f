// Error checking shared by every CUDA file. Library code never exits: a failed call records a message with
// the expression, file, line and a hint, and returns AC_ERR_CUDA (or AC_ERR_NOMEM for out-of-memory) from
// the calling function. KERNEL_CHECK() after each launch; AC_SYNC=1 in the environment (or -DAC_DEBUG_SYNC)
// also synchronises so that an asynchronous fault is reported at the kernel that caused it.
#pragma once

#include <cuda_runtime.h>
#include <stdlib.h>

#include "../host/status.h"

static inline int ac_debug_sync(void) {
#ifdef AC_DEBUG_SYNC
    return 1;
#else
    const char *e = getenv("AC_SYNC");
    return e && e[0] == '1';
#endif
}

// A failed allocation is not sticky, but CUDA also keeps it as the last error: it is cleared here, or the next
// KERNEL_CHECK after a retry at a smaller batch would report it again as that kernel's failure.
#define CUDA_CHECK(expr)                                                                                          \
    do {                                                                                                          \
        cudaError_t err_ = (expr);                                                                                \
        if (err_ == cudaErrorMemoryAllocation) (void)cudaGetLastError();                                          \
        if (err_ != cudaSuccess)                                                                                  \
            return ac_fail(err_ == cudaErrorMemoryAllocation ? AC_ERR_NOMEM : AC_ERR_CUDA,                        \
                           "%s:%d: %s failed: %s (%s) (hint: %s)", __FILE__, __LINE__, #expr,                    \
                           cudaGetErrorName(err_), cudaGetErrorString(err_),                                      \
                           err_ == cudaErrorMemoryAllocation ? "reduce --batch-size"                             \
                           : err_ == cudaErrorNoKernelImageForDevice                                             \
                               ? "rebuild with -DCMAKE_CUDA_ARCHITECTURES matching this GPU"                      \
                               : "run with AC_SYNC=1 to locate the failing kernel");                             \
    } while (0)

#define KERNEL_CHECK()                                                                                            \
    do {                                                                                                          \
        CUDA_CHECK(cudaGetLastError());                                                                           \
        if (ac_debug_sync()) CUDA_CHECK(cudaDeviceSynchronize());                                                 \
    } while (0)

#define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))

// Lets `kernel` take `bytes` of dynamic shared memory on the current device (cudaFuncSetAttribute's
// MaxDynamicSharedMemorySize, needed above 48 KB): set once per kernel and device for the largest size asked so
// far (kernels/device.cu), not at every launch, where it was a driver call per launch (the decoder issues ~50
// launches a step).
cudaError_t ac_smem_optin_fn(const void *kernel, int bytes);
template <typename F> static inline cudaError_t ac_smem_optin(F *kernel, int bytes) {
    return ac_smem_optin_fn((const void *)kernel, bytes);
}

// cuBLAS / cuBLASLt / cuFFT status checks, same contract as CUDA_CHECK (allocation failures -> AC_ERR_NOMEM).
#define CUBLAS_CHECK(expr)                                                                                        \
    do {                                                                                                          \
        int cst_ = (int)(expr);                                                                                   \
        if (cst_ != 0)                                                                                            \
            return ac_fail(cst_ == 3 /* CUBLAS_STATUS_ALLOC_FAILED */ ? AC_ERR_NOMEM : AC_ERR_CUDA,              \
                           "%s:%d: %s failed: cuBLAS status %d (hint: %s)", __FILE__, __LINE__, #expr, cst_,      \
                           cst_ == 3 ? "reduce --batch-size" : "run with AC_SYNC=1 and CUBLAS_LOGINFO_DBG=1");     \
    } while (0)

#define CUFFT_CHECK(expr)                                                                                         \
    do {                                                                                                          \
        int fst_ = (int)(expr);                                                                                   \
        if (fst_ != 0)                                                                                            \
            return ac_fail(fst_ == 2 /* CUFFT_ALLOC_FAILED */ ? AC_ERR_NOMEM : AC_ERR_CUDA,                       \
                           "%s:%d: %s failed: cuFFT status %d (hint: %s)", __FILE__, __LINE__, #expr, fst_,       \
                           fst_ == 2 ? "reduce --batch-size" : "run with AC_SYNC=1 to locate the failure");       \
    } while (0)
