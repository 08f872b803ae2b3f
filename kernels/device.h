// C-callable CUDA device queries (kernels/device.cu; host/gpu_none.c when built with -DAC_CUDA=OFF).
#ifndef AC_DEVICE_H
#define AC_DEVICE_H

#include "ac.h"

#ifdef __cplusplus
extern "C" {
#endif

// 1 if the engine was compiled with CUDA.
int ac_cuda_compiled(void);
// Number of usable CUDA devices; 0 (and AC_OK) when there is no GPU or no driver.
ac_status ac_cuda_device_count(int *n);
// One line: "cuda:0 NVIDIA H100 80GB HBM3, sm_90, 132 SMs, 79.1 GiB, driver 12.8, runtime 13.0".
ac_status ac_cuda_device_describe(int device, char *buf, size_t cap);
// Launches a kernel that writes a pattern into device memory and checks it on the host: proves that the
// driver, the runtime and this build's architectures (cubin or PTX) work on `device`.
ac_status ac_cuda_selftest(int device);

#ifdef __cplusplus
}
#endif
#endif
