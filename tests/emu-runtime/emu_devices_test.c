// The stand-in runtime's devices (emu_runtime.cpp, "devices"): with EMU_DEVICES=2 each host thread has its own
// current device and last error; memory, streams, events and cuBLAS handles belong to the device current when
// they were made, each device has its own memory limit (EMU_DEVICE_MEMORY=A,B), and each cross-device mistake
// that CUDA rejects or a GPU faults on is an error here, every time, while what CUDA allows across devices
// (copies, waits, syncs) works. Not a GPU test: it checks the tool the GPU test programs run on in CI.
#include "../../kernels/dwconv_ln.h"
#include "../../host/status.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu_check.h"

static void *thread_device(void *arg) {
    int *d = (int *)arg;
    cudaGetDevice(d);  // a new host thread starts on device 0, whatever the creating thread's
    d[1] = cudaGetLastError();  // and sees none of another thread's errors
    return NULL;
}

int main(void) {
    // read once, at the runtime's first use: set before any CUDA call
    setenv("EMU_DEVICES", "2", 1);
    setenv("EMU_DEVICE_MEMORY", "4096,65536", 1);
    int n = 0, cur = -1;
    EXPECT(cudaGetDeviceCount(&n) == cudaSuccess && n == 2, "two devices (got %d)", n);
    EXPECT(cudaSetDevice(2) != cudaSuccess, "cudaSetDevice(2) of two devices fails");
    (void)cudaGetLastError();

    // per-device memory: 4 KB on device 0, 64 KB on device 1
    float *d0 = NULL, *d1 = NULL, *big = NULL;
    size_t fr = 0, tot = 0;
    EXPECT(cudaSetDevice(0) == cudaSuccess && cudaMalloc((void **)&big, 8192) == cudaErrorMemoryAllocation,
           "8 KB do not fit device 0 (4 KB)");
    (void)cudaGetLastError();
    EXPECT(cudaMalloc((void **)&d0, 49 * 8 * sizeof(float)) == cudaSuccess, "device 0 allocation");
    EXPECT(cudaMemGetInfo(&fr, &tot) == cudaSuccess && tot == 4096 && fr == 4096 - 49 * 8 * sizeof(float),
           "device 0: %zu of %zu bytes free", fr, tot);
    EXPECT(cudaSetDevice(1) == cudaSuccess && cudaMalloc((void **)&big, 8192) == cudaSuccess, "8 KB fit device 1");
    EXPECT(cudaMalloc((void **)&d1, 49 * 8 * sizeof(float)) == cudaSuccess, "device 1 allocation");
    EXPECT(cudaMemGetInfo(&fr, &tot) == cudaSuccess && tot == 65536, "device 1 has 64 KB (got %zu)", tot);
    EXPECT(cudaGetDevice(&cur) == cudaSuccess && cur == 1, "current device 1");

    // another host thread: device 0, and its own last error
    int td[2] = {-1, -1};
    (void)cudaSetDevice(7);  // leaves an error in this thread
    pthread_t t;
    pthread_create(&t, NULL, thread_device, td);
    pthread_join(t, NULL);
    EXPECT(td[0] == 0 && td[1] == cudaSuccess, "a new thread: device %d, last error %d", td[0], td[1]);
    EXPECT(cudaGetLastError() != cudaSuccess, "this thread keeps its own error");
    EXPECT(cudaGetDevice(&cur) == cudaSuccess && cur == 1, "a failed cudaSetDevice leaves the current device");

    // streams, events and handles of each device
    cudaStream_t s0, s1;
    cudaEvent_t e0, e1;
    cublasHandle_t h0, h1;
    cudaSetDevice(0);
    cudaStreamCreateWithFlags(&s0, cudaStreamNonBlocking);
    cudaEventCreate(&e0);
    cublasCreate(&h0);
    cudaSetDevice(1);
    cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking);
    cudaEventCreate(&e1);
    cublasCreate(&h1);

    float w[49 * 8];
    for (int i = 0; i < 49 * 8; i++) w[i] = (float)i;
    EXPECT(cudaMemcpy(d1, w, sizeof w, cudaMemcpyHostToDevice) == cudaSuccess, "host -> device 1 while 1 is current");
    cudaSetDevice(0);
    EXPECT(cudaMemcpy(d0, d1, sizeof w, cudaMemcpyDeviceToDevice) == cudaSuccess, "device 1 -> device 0: allowed");

    // a kernel launch (through a library launcher) on device 0: its own stream and memory work ...
    float *wt0 = NULL;
    EXPECT(cudaMalloc((void **)&wt0, sizeof w) == cudaSuccess, "device 0 allocation");
    EXPECT(ac_dwconv7_weight_t(d0, 8, wt0, s0) == AC_OK, "device 0 kernel, device 0 stream and memory: %s",
           ac_last_error());
    EXPECT(cudaStreamSynchronize(s0) == cudaSuccess, "sync");
    // ... another device's stream is refused, as is another device's memory (no peer access)
    EXPECT(ac_dwconv7_weight_t(d0, 8, wt0, s1) != AC_OK, "a launch on device 1's stream while 0 is current fails");
    (void)cudaGetLastError();
    EXPECT(ac_dwconv7_weight_t(d1, 8, wt0, s0) != AC_OK, "a kernel on device 0 reading device 1's memory fails");
    (void)cudaGetLastError();
    float back[49 * 8];
    EXPECT(cudaMemcpy(back, wt0, sizeof back, cudaMemcpyDeviceToHost) == cudaSuccess && back[1] == w[49] &&
               back[8] == w[1],
           "the device 0 launch transposed the weights (%g %g)", back[1], back[8]);

    // events: recorded only on their device's streams; waited on from anywhere
    EXPECT(cudaEventRecord(e1, s0) != cudaSuccess, "device 1's event on device 0's stream fails");
    (void)cudaGetLastError();
    EXPECT(cudaEventRecord(e0, s0) == cudaSuccess, "device 0's event on device 0's stream");
    EXPECT(cudaStreamWaitEvent(s1, e0, 0) == cudaSuccess, "device 1's stream may wait for device 0's event");

    // cuBLAS: a handle works while its device is current, on its device's operands
    const float one = 1.0f, zero = 0.0f;
    cublasSetStream(h0, s0);
    EXPECT(cublasSgemm(h0, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, d0, 8, d0, 8, &zero, wt0, 8) ==
               CUBLAS_STATUS_SUCCESS, "device 0's handle on device 0's memory");
    EXPECT(cublasSgemm(h0, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, d1, 8, d0, 8, &zero, wt0, 8) !=
               CUBLAS_STATUS_SUCCESS, "device 0's handle given device 1's memory fails");
    cublasSetStream(h1, s1);
    EXPECT(cublasSgemm(h1, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, d1, 8, d1, 8, &zero, d1, 8) !=
               CUBLAS_STATUS_SUCCESS, "device 1's handle while device 0 is current fails");
    EXPECT(cublasDestroy(h1) != CUBLAS_STATUS_SUCCESS, "destroying device 1's handle with device 0 current fails");
    (void)cudaGetLastError();
    EXPECT(cudaDeviceSynchronize() == cudaSuccess, "device sync");

    cublasDestroy(h0);
    cudaSetDevice(1);
    EXPECT(cublasDestroy(h1) == CUBLAS_STATUS_SUCCESS, "destroyed with its device current");
    // any device's memory may be freed from any current device (unified addressing)
    EXPECT(cudaFree(d0) == cudaSuccess && cudaFree(wt0) == cudaSuccess && cudaFree(d1) == cudaSuccess &&
               cudaFree(big) == cudaSuccess, "frees");
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    cudaStreamDestroy(s0);
    cudaStreamDestroy(s1);
    printf("emu_devices_test: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
