// Device discovery and a launch self-test. The self-test kernel writes out[i] = i * 3 + 1 over n elements
// (grid-stride loop), so a missing cubin/PTX for the architecture, a broken driver or a bad launch shows up
// as an error or a wrong value rather than as silence.
#include "common.cuh"
#include "device.h"

#include <mutex>
#include <stdio.h>
#include <string.h>

extern "C" int ac_cuda_compiled(void) { return 1; }

// See common.cuh. The attribute belongs to the kernel in the device's context, so it is kept per (kernel,
// device); a table of the pairs seen (a few dozen kernels x devices), under a lock: workers on several threads
// launch. Past the table's end it sets the attribute every time, as before.
cudaError_t ac_smem_optin_fn(const void *kernel, int bytes) {
    if (bytes <= 48 * 1024) return cudaSuccess;
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess) return e;
    struct entry {
        const void *fn;
        int dev, bytes;
    };
    static entry done[1024];
    static int n_done;
    static std::mutex mu;
    std::lock_guard<std::mutex> lock(mu);
    int i = 0;
    while (i < n_done && !(done[i].fn == kernel && done[i].dev == dev)) i++;
    if (i < n_done && done[i].bytes >= bytes) return cudaSuccess;
    e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    if (e == cudaSuccess && i < n_done) done[i].bytes = bytes;
    else if (e == cudaSuccess && n_done < (int)(sizeof done / sizeof done[0])) done[n_done++] = {kernel, dev, bytes};
    return e;
}

extern "C" ac_status ac_cuda_device_count(int *n) {
    *n = 0;
    cudaError_t err = cudaGetDeviceCount(n);
    if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver) {
        cudaGetLastError();  // clear the sticky-free error so later calls start clean
        *n = 0;
        return AC_OK;
    }
    CUDA_CHECK(err);
    return AC_OK;
}

extern "C" ac_status ac_cuda_device_describe(int device, char *buf, size_t cap) {
    cudaDeviceProp p;
    CUDA_CHECK(cudaGetDeviceProperties(&p, device));
    int drv = 0, rt = 0;
    CUDA_CHECK(cudaDriverGetVersion(&drv));
    CUDA_CHECK(cudaRuntimeGetVersion(&rt));
    snprintf(buf, cap, "cuda:%d %s, sm_%d%d, %d SMs, %.1f GiB, driver %d.%d, runtime %d.%d", device, p.name, p.major,
             p.minor, p.multiProcessorCount, p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), drv / 1000,
             (drv % 1000) / 10, rt / 1000, (rt % 1000) / 10);
    return AC_OK;
}

static __global__ void selftest_kernel(int *out, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) out[i] = i * 3 + 1;
}

extern "C" ac_status ac_cuda_selftest(int device) {
    const int n = 1 << 20;
    int *d = NULL;
    int *h = (int *)malloc(sizeof(int) * n);
    if (!h) return ac_fail(AC_ERR_NOMEM, "cuda selftest: host out of memory");
    ac_status st = AC_OK;
    cudaError_t err = cudaSetDevice(device);
    if (err == cudaSuccess) err = cudaMalloc(&d, sizeof(int) * n);
    if (err == cudaSuccess) err = cudaMemset(d, 0xff, sizeof(int) * n);
    if (err == cudaSuccess) {
        selftest_kernel<<<CEIL_DIV(n, 4 * 256), 256>>>(d, n);  // fewer blocks than n/256: exercises the loop
        err = cudaGetLastError();
    }
    if (err == cudaSuccess) err = cudaMemcpy(h, d, sizeof(int) * n, cudaMemcpyDeviceToHost);
    if (err != cudaSuccess) {
        st = ac_fail(AC_ERR_CUDA, "cuda selftest on cuda:%d: %s (%s) (hint: check the driver and that this build's "
                     "CMAKE_CUDA_ARCHITECTURES covers the GPU)", device, cudaGetErrorName(err),
                     cudaGetErrorString(err));
    } else {
        for (int i = 0; i < n; i++)
            if (h[i] != i * 3 + 1) {
                st = ac_fail(AC_ERR_CUDA, "cuda selftest on cuda:%d: element %d is %d, expected %d", device, i, h[i],
                             i * 3 + 1);
                break;
            }
    }
    if (d) cudaFree(d);
    free(h);
    return st;
}
