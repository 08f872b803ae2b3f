// The stand-in runtime's stream semantics (emu_runtime.cpp, "streams: deferred work"): work runs as late as CUDA
// allows, so each ordering mistake below gives stale data here every time, where on a GPU it would only
// sometimes. Each case is run with the mistake (stale data expected: the emulator exposes it) and without it
// (correct data expected). Not a GPU test: it checks the tool the GPU test programs run on in CI.
#include <cuda_runtime.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "emu_check.h"

enum { N = 64 };

// case 6: what another thread does while this one captures
typedef enum { SYNC_DEVICE, SYNC_OWN_STREAM, FREE, COPY } other_op;
typedef struct {
    other_op op;
    cudaStream_t s;
    cudaError_t e;
} other_arg;
static void *other_thread(void *p) {
    other_arg *a = (other_arg *)p;
    void *q = NULL;
    unsigned char byte = 0;
    switch (a->op) {
    case SYNC_DEVICE: a->e = cudaDeviceSynchronize(); break;
    case SYNC_OWN_STREAM: a->e = cudaStreamSynchronize(a->s); break;
    case FREE: a->e = cudaMalloc(&q, 16); if (a->e == cudaSuccess) a->e = cudaFree(q); break;
    case COPY: a->e = cudaMalloc(&q, 16); if (a->e == cudaSuccess) a->e = cudaMemcpy(&byte, q, 1, cudaMemcpyDeviceToHost);
               cudaFree(q); break;
    }
    return NULL;
}
// capture a memset on stream s while another thread does op: 1 if the capture survived (and its graph replays)
static int capture_survives(cudaStream_t s, cudaStream_t other, other_op op, unsigned char *d, cudaError_t *other_e) {
    cudaGraph_t g = NULL;
    cudaGraphExec_t x = NULL;
    cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed);
    other_arg a = {op, other, cudaSuccess};
    pthread_t t;
    pthread_create(&t, NULL, other_thread, &a);
    pthread_join(t, NULL);
    *other_e = a.e;
    const cudaError_t m = cudaMemsetAsync(d, 12, N, s);
    const cudaError_t e = cudaStreamEndCapture(s, &g);
    cudaGetLastError();
    if (e != cudaSuccess || m != cudaSuccess || !g) return 0;
    cudaGraphInstantiate(&x, g, 0);
    cudaGraphLaunch(x, s);
    cudaStreamSynchronize(s);
    cudaGraphExecDestroy(x);
    cudaGraphDestroy(g);
    return 1;
}

static int all(const unsigned char *p, int v) {
    for (int i = 0; i < N; i++)
        if (p[i] != (unsigned char)v) return 0;
    return 1;
}

int main(void) {
    cudaStream_t a, b, blocking;
    cudaEvent_t ev;
    unsigned char *d, *h, page[N];
    if (cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking) || cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking) ||
        cudaStreamCreate(&blocking) || cudaEventCreate(&ev) || cudaMalloc((void **)&d, N) ||
        cudaMallocHost((void **)&h, N)) {
        printf("emu_streams_test: setup failed\n");
        return 1;
    }

    // 1. a result read on another stream without an event: stale; with cudaStreamWaitEvent: the result
    cudaMemset(d, 0, N);
    cudaMemsetAsync(d, 1, N, a);
    memset(h, 9, N);
    cudaMemcpyAsync(h, d, N, cudaMemcpyDeviceToHost, b);
    cudaStreamSynchronize(b);
    EXPECT(all(h, 0), "stream b read what stream a had not yet written: the emulator ran a's work early");
    cudaStreamSynchronize(a);
    cudaMemsetAsync(d, 2, N, a);
    cudaEventRecord(ev, a);
    cudaStreamWaitEvent(b, ev, 0);
    cudaMemcpyAsync(h, d, N, cudaMemcpyDeviceToHost, b);
    cudaStreamSynchronize(b);
    EXPECT(all(h, 2), "after cudaStreamWaitEvent, stream b must see stream a's write");

    // 2. the host writes a pinned source before its async copy ran: the copy takes the new bytes
    memset(h, 3, N);
    cudaMemcpyAsync(d, h, N, cudaMemcpyHostToDevice, a);
    memset(h, 4, N);  // the mistake: no cudaStreamSynchronize / cudaEventSynchronize before reusing h
    cudaStreamSynchronize(a);
    cudaMemcpy(page, d, N, cudaMemcpyDeviceToHost);
    EXPECT(all(page, 4), "an async copy from pinned memory must read its source when it runs, not at the call");
    //    ... and from pageable memory CUDA stages the bytes at the call
    memset(page, 5, N);
    cudaMemcpyAsync(d, page, N, cudaMemcpyHostToDevice, a);
    memset(page, 6, N);
    cudaStreamSynchronize(a);
    cudaMemcpy(page, d, N, cudaMemcpyDeviceToHost);
    EXPECT(all(page, 5), "an async copy from pageable memory must take the bytes at the call");

    // 3. a synchronous cudaMemcpy does not wait for a non-blocking stream, but does for a blocking one
    cudaMemsetAsync(d, 7, N, a);
    cudaMemcpy(page, d, N, cudaMemcpyDeviceToHost);
    EXPECT(all(page, 5), "cudaMemcpy waited for a cudaStreamNonBlocking stream");
    cudaStreamSynchronize(a);
    cudaMemsetAsync(d, 8, N, blocking);
    cudaMemcpy(page, d, N, cudaMemcpyDeviceToHost);
    EXPECT(all(page, 8), "cudaMemcpy must wait for a blocking stream's work");

    // 4. a pinned result read before its event completed: stale; after cudaEventSynchronize: the result
    memset(h, 0, N);
    cudaMemsetAsync(d, 10, N, a);
    cudaMemcpyAsync(h, d, N, cudaMemcpyDeviceToHost, a);
    cudaEventRecord(ev, a);
    EXPECT(all(h, 0), "a queued copy into pinned memory ran before anything waited for it");
    cudaEventSynchronize(ev);
    EXPECT(all(h, 10), "cudaEventSynchronize must complete the work recorded before the event");

    // 5. cudaFree synchronises the device: queued work that uses the allocation runs first
    unsigned char *d2;
    cudaMalloc((void **)&d2, N);
    cudaMemsetAsync(d2, 11, N, a);
    cudaMemcpyAsync(h, d2, N, cudaMemcpyDeviceToHost, a);
    cudaFree(d2);
    EXPECT(all(h, 11), "cudaFree must run the queued work that still uses the allocation");

    EXPECT(cudaGetLastError() == cudaSuccess, "a runtime error was recorded");

    // 6. a capture is device-scoped (as measured on NVIDIA GPUs): a device-wide synchronisation by another thread
    //    meanwhile invalidates it (the other thread's call itself succeeds, the capture being relaxed); a wait for
    //    that thread's own stream does not
    const struct { other_op op; int survives; const char *what; } cases[] = {
        {SYNC_OWN_STREAM, 1, "cudaStreamSynchronize of its own stream"},
        {SYNC_DEVICE, 0, "cudaDeviceSynchronize"},
        {FREE, 0, "cudaFree"},
        {COPY, 0, "a synchronous cudaMemcpy"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cudaError_t oe = cudaSuccess;
        cudaMemset(d, 0, N);
        const int ok = capture_survives(a, b, cases[i].op, d, &oe);
        EXPECT(ok == cases[i].survives, "a capture while another thread ran %s: %s", cases[i].what,
               ok ? "survived" : "invalidated");
        EXPECT(oe == cudaSuccess, "the other thread's %s failed (%d) during a relaxed capture", cases[i].what, (int)oe);
        cudaMemcpy(page, d, N, cudaMemcpyDeviceToHost);
        EXPECT(all(page, ok ? 12 : 0), "the graph after %s: its memset %s", cases[i].what, ok ? "ran" : "must not run");
    }
    EXPECT(cudaGetLastError() == cudaSuccess, "an invalidated capture's error outlived cudaGetLastError");
    cudaFree(d);
    cudaFreeHost(h);
    cudaEventDestroy(ev);
    cudaStreamDestroy(a);
    cudaStreamDestroy(b);
    cudaStreamDestroy(blocking);
    printf("emu_streams_test: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
