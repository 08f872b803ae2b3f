// GPU smoke test: the build's CUDA code runs on every visible device (a kernel writes a pattern that the host
// checks). Exits 77 (skipped) when the build has no CUDA or the machine has no GPU.
#include "../kernels/device.h"
#include "testutil.h"

int main(void) {
    int n = 0;
    if (!ac_cuda_compiled()) {
        printf("test_cuda_device: built without CUDA: skipped\n");
        return AC_SKIP;
    }
    ac_status st = ac_cuda_device_count(&n);
    if (st != AC_OK) {
        fprintf(stderr, "FAIL: device count: %s\n", ac_last_error());
        return 1;
    }
    if (n == 0) {
        printf("test_cuda_device: no CUDA device: skipped\n");
        return AC_SKIP;
    }
    int checks = 0;
    for (int i = 0; i < n; i++) {
        char buf[256];
        CHECK_OK(ac_cuda_device_describe(i, buf, sizeof buf));
        printf("  %s\n", buf);
        CHECK_OK(ac_cuda_selftest(i));
        checks += 2;
    }
    return test_finish("test_cuda_device", checks);
}
