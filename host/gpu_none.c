// Stand-ins for kernels/device.cu in a CPU-only build (-DAC_CUDA=OFF): no devices.
#include "../kernels/device.h"
#include "status.h"

int ac_cuda_compiled(void) { return 0; }

ac_status ac_cuda_device_count(int *n) {
    *n = 0;
    return AC_OK;
}

ac_status ac_cuda_device_describe(int device, char *buf, size_t cap) {
    (void)buf;
    (void)cap;
    return ac_fail(AC_ERR_CUDA, "cuda:%d: this audiocap was built without CUDA (hint: rebuild with -DAC_CUDA=ON)",
                   device);
}

ac_status ac_cuda_selftest(int device) { return ac_cuda_device_describe(device, NULL, 0); }
