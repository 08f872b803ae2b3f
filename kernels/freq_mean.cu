// Mean over frequency (see freq_mean.h): one thread per (frame, channel), consecutive threads on consecutive
// channels (coalesced), the F terms summed in double in f order as host/model.c does.
#include "common.cuh"
#include "freq_mean.h"

static __global__ void freq_mean_kernel(const float *__restrict__ x, int64_t total, int F, int C,
                                        float *__restrict__ y) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t g = i / C;
        const int c = (int)(i % C);
        double s = 0;
        for (int f = 0; f < F; f++) s += x[(g * F + f) * C + c];
        y[i] = (float)(s / F);
    }
}

extern "C" ac_status ac_freq_mean(const float *x, int64_t frames, int F, int C, float *y, cudaStream_t stream) {
    if (frames < 0 || F < 1 || C < 1 || !x || !y)
        return ac_fail(AC_ERR_INVALID_ARG, "frequency mean: frames %lld, F %d, C %d or a NULL pointer",
                       (long long)frames, F, C);
    const int64_t total = frames * C;
    if (total == 0) return AC_OK;
    int64_t g = CEIL_DIV(total, (int64_t)256);
    freq_mean_kernel<<<(unsigned)(g > 1048576 ? 1048576 : g), 256, 0, stream>>>(x, total, F, C, y);
    KERNEL_CHECK();
    return AC_OK;
}
