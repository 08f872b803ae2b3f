// CPU stand-in CUDA runtime (see include/cuda_runtime.h): memory bookkeeping, kernel launches as host threads,
// barriers, warp exchange, cp.async, streams whose work runs as late as CUDA allows (events, graphs as
// recordings), and the cuBLAS / cuFFT subsets. Built with AddressSanitizer together with the kernels and test programs (tests/emu-runtime).
//
// Launch model: blocks run one after another; within a block each CUDA thread is a fiber on the launching host
// thread (see "kernel launches" below). __syncthreads is a block-wide barrier, __syncwarp and shuffles a per-warp
// one; a thread that returns counts as arrived at both (as on the hardware for __syncthreads; for warp
// collectives it is undefined behaviour in CUDA, here it just does not deadlock). Threads waiting on different
// barriers: the program aborts naming the kernel.
// Misuse caught: copies/memsets/GEMM operands outside a cudaMalloc allocation (or pointing at host memory where
// device memory is required), cudaFree of a non-allocation, launches with more than 1024 threads or an empty
// grid, dynamic shared memory above 48 KB without cudaFuncSetAttribute (or above the 227 KB opt-in), reads of
// unwritten device or shared memory (NaN poison), out-of-bounds accesses (ASan: every allocation is exact).
#include <cuda_runtime.h>
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cufft.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <string>
#include <chrono>
#include <complex>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include <sys/mman.h>
#include <ucontext.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#endif

// ---- errors -----------------------------------------------------------------------------------------------
static thread_local cudaError_t g_last = cudaSuccess;  // per host thread, as in CUDA
static cudaError_t set_err(cudaError_t e) {
    if (e != cudaSuccess && g_last == cudaSuccess) g_last = e;
    return e;
}
static cudaError_t misuse(cudaError_t e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static cudaError_t misuse(cudaError_t e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "emu-runtime: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (getenv("EMU_ABORT_ON_MISUSE")) abort();
    return set_err(e);
}
static bool device_dead();  // EMU_DEVICE_FAIL: the current device has failed (a sticky error, as a GPU's)
extern "C" cudaError_t cudaGetLastError(void) {
    if (device_dead()) return cudaErrorLaunchFailure;
    cudaError_t e = g_last;
    g_last = cudaSuccess;
    return e;
}
extern "C" cudaError_t cudaPeekAtLastError(void) { return device_dead() ? cudaErrorLaunchFailure : g_last; }
extern "C" const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument (emu-runtime)";
    case cudaErrorMemoryAllocation: return "out of memory (emu-runtime)";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument (emu-runtime)";
    case cudaErrorInvalidDevice: return "invalid device ordinal (emu-runtime)";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle (emu-runtime)";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered (emu-runtime)";
    case cudaErrorLaunchFailure: return "unspecified launch failure (emu-runtime)";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing (emu-runtime)";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture (emu-runtime)";
    default: return "error (emu-runtime)";
    }
}
extern "C" const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    default: return "cudaErrorUnknown";
    }
}

// ---- devices: plausible H100s ------------------------------------------------------------------------------
// EMU_DEVICES=N (1-8, default 1) devices. Each host thread has a current device (0 until cudaSetDevice), as in
// CUDA. What is made while a device is current belongs to it: allocations, streams, events, cuBLAS handles,
// cuFFT plans. Misuse across devices that CUDA rejects or that faults on a GPU is reported: a launch into another
// device's stream (cudaErrorInvalidResourceHandle), a kernel given another device's memory (no peer access is
// ever enabled: an illegal address on a GPU), an event recorded on another device's stream, a cuBLAS handle or
// cuFFT plan used (or destroyed) while another device is current, or given another device's operands. Copies
// between devices and host<->any device are allowed (unified addressing), as are waits and syncs on other
// devices' events and streams.
static const size_t EMU_SMEM_OPTIN = 227 * 1024, EMU_SMEM_DEFAULT = 48 * 1024;
static const int EMU_MAX_DEVICES = 8;
static size_t device_memory(int d);
static int n_devices() {
    static const int v = [] {
        const char *e = getenv("EMU_DEVICES");
        const int n = e && *e ? atoi(e) : 1;
        return n < 1 ? 1 : n > EMU_MAX_DEVICES ? EMU_MAX_DEVICES : n;
    }();
    return v;
}
static thread_local int t_dev;  // this host thread's current device
static void device_sync_point(void);  // a device-wide synchronisation: invalidates other threads' captures

// EMU_DEVICE_FAIL=D:N: device D fails at its N-th kernel launch (counted over the process, from 1), as a GPU that
// hits an Xid error: from then on every call made with D current returns cudaErrorLaunchFailure, and
// cudaGetLastError keeps returning it (a sticky error: the context is lost). Frees and destroys still work.
static int g_fail_dev = -1;
static long g_fail_at;
static std::atomic<long> g_launches[EMU_MAX_DEVICES];
static std::atomic<bool> g_dead[EMU_MAX_DEVICES];
static bool device_dead() {
    static const bool parsed = [] {
        const char *e = getenv("EMU_DEVICE_FAIL");
        if (e && *e && sscanf(e, "%d:%ld", &g_fail_dev, &g_fail_at) != 2) g_fail_dev = -1;
        return true;
    }();
    (void)parsed;
    return g_fail_dev >= 0 && g_dead[t_dev].load();
}
// a kernel launch on the current device: counts it, and kills the device at the chosen launch
static bool launch_kills_device() {
    if (device_dead()) return true;
    if (t_dev != g_fail_dev) return false;
    if (++g_launches[t_dev] >= g_fail_at) {
        g_dead[t_dev] = true;
        fprintf(stderr, "emu-runtime: device %d fails at launch %ld (EMU_DEVICE_FAIL)\n", t_dev, g_launches[t_dev].load());
        return true;
    }
    return false;
}
extern "C" cudaError_t cudaGetDeviceCount(int *n) {
    *n = n_devices();
    return cudaSuccess;
}
extern "C" cudaError_t cudaSetDevice(int d) {
    if (d < 0 || d >= n_devices())
        return misuse(cudaErrorInvalidDevice, "cudaSetDevice(%d): %d device(s) (EMU_DEVICES)", d, n_devices());
    t_dev = d;
    return cudaSuccess;
}
extern "C" cudaError_t cudaGetDevice(int *d) {
    *d = t_dev;
    return cudaSuccess;
}
extern "C" cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
    if (d < 0 || d >= n_devices()) return misuse(cudaErrorInvalidDevice, "cudaGetDeviceProperties(%d): %d device(s)", d, n_devices());
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "emu-runtime CPU stand-in (H100-like)");
    p->totalGlobalMem = device_memory(d);
    p->sharedMemPerBlock = EMU_SMEM_DEFAULT;
    p->sharedMemPerBlockOptin = EMU_SMEM_OPTIN;
    p->sharedMemPerMultiprocessor = 228 * 1024;
    p->regsPerBlock = 65536;
    p->warpSize = 32;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024;
    p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 2147483647;
    p->maxGridSize[1] = p->maxGridSize[2] = 65535;
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 132;
    p->l2CacheSize = 50 << 20;
    p->maxThreadsPerMultiProcessor = 2048;
    return cudaSuccess;
}
extern "C" cudaError_t cudaDeviceGetAttribute(int *v, enum cudaDeviceAttr a, int d) {
    if (d < 0 || d >= n_devices()) return misuse(cudaErrorInvalidDevice, "cudaDeviceGetAttribute on device %d", d);
    switch (a) {
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = (int)EMU_SMEM_OPTIN; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *v = 132; return cudaSuccess;
    }
    return misuse(cudaErrorInvalidValue, "cudaDeviceGetAttribute(%d): not emulated", (int)a);
}
extern "C" cudaError_t cudaDriverGetVersion(int *v) {
    *v = 13000;
    return cudaSuccess;
}
extern "C" cudaError_t cudaRuntimeGetVersion(int *v) {
    *v = 13000;
    return cudaSuccess;
}

// ---- streams: deferred work ---------------------------------------------------------------------------------
// By default (EMU_STREAMS unset or "lazy") work queued on a created stream runs only when something forces it:
// a synchronisation of that stream, of an event recorded on it, or of the device; a stream waiting on an event
// recorded here; an implicit synchronisation (cudaFree, cudaFreeHost, and work on the legacy stream, which waits
// for every blocking stream, cudaStreamNonBlocking ones excepted). So work runs as late as CUDA allows, in an
// order CUDA allows: a host read of a result without its synchronisation, a host write into a pinned buffer an
// async copy has not read yet, or a kernel reading what another stream writes without an event, gives stale
// data here and fails the test, where on a GPU it would fail only sometimes. EMU_STREAMS=sync: run at once.
struct emu_stream {
    unsigned flags;
    int dev;  // current when it was created
    std::deque<std::function<void()>> q;
    uint64_t enq = 0, done = 0;  // operations queued, operations run
};
struct emu_event {
    std::chrono::steady_clock::time_point t;
    bool timing;
    int dev;                  // current when it was created
    emu_stream *s = nullptr;  // the stream of its last record, and the queue position that record completes at
    uint64_t seq = 0;
};
static std::recursive_mutex g_q_mu;       // held while queues change and while queued work runs
// every stream created; destroyed ones are drained and kept, since events may name them (never freed, nor is the
// list: reachable to the leak checker after static destructors have run)
static std::vector<emu_stream *> &g_streams = *new std::vector<emu_stream *>;
static bool lazy_streams() {
    static const bool v = [] {
        const char *e = getenv("EMU_STREAMS");
        return !(e && !strcmp(e, "sync"));
    }();
    return v;
}
static void run_upto(emu_stream *s, uint64_t seq) {
    std::lock_guard<std::recursive_mutex> l(g_q_mu);
    while (s->done < seq && !s->q.empty()) {
        std::function<void()> op = std::move(s->q.front());
        s->q.pop_front();
        s->done++;
        op();
    }
}
static void drain(emu_stream *s) { run_upto(s, UINT64_MAX); }
static void drain_all(bool blocking_only) {
    std::lock_guard<std::recursive_mutex> l(g_q_mu);
    for (bool again = true; again;) {  // an operation may force another stream: repeat until all are empty
        again = false;
        for (emu_stream *s : g_streams)
            if (!(blocking_only && (s->flags & cudaStreamNonBlocking)) && !s->q.empty()) {
                drain(s);
                again = true;
            }
    }
}

// ---- memory -----------------------------------------------------------------------------------------------
static std::mutex g_mem_mu;
static std::map<uintptr_t, size_t> g_dev, g_pinned;  // base -> size
static std::map<uintptr_t, int> g_owner;              // device allocation base -> its device
static size_t g_dev_bytes[EMU_MAX_DEVICES];
static bool in_map(const std::map<uintptr_t, size_t> &m, const void *p, size_t n) {
    if (!p) return false;
    uintptr_t a = (uintptr_t)p;
    auto it = m.upper_bound(a);
    if (it == m.begin()) return false;
    --it;
    return a >= it->first && a + n <= it->first + it->second;
}
extern "C" int emu_is_device_range(const void *p, size_t n) {
    std::lock_guard<std::mutex> l(g_mem_mu);
    return in_map(g_dev, p, n);
}
// The device owning the allocation that holds p, or -1 (host memory, or not an allocation).
static int owner_of(const void *p) {
    std::lock_guard<std::mutex> l(g_mem_mu);
    if (!p || !in_map(g_dev, p, 1)) return -1;
    auto it = g_dev.upper_bound((uintptr_t)p);
    --it;
    return g_owner[it->first];
}
// p lies in the memory of a device other than dev (host memory and non-allocations are nobody's)
static bool foreign(const void *p, int dev) {
    const int o = owner_of(p);
    return o >= 0 && o != dev;
}
static bool host_side(const void *p, size_t n) {
    std::lock_guard<std::mutex> l(g_mem_mu);
    return !in_map(g_dev, p, n) && !in_map(g_dev, p, 1);
}
// EMU_DEVICE_MEMORY=BYTES[,BYTES...]: smaller devices (one figure per device, the last for the rest), so that
// tests can run a real out-of-memory path (a batch whose buffers do not fit), not only a simulated one.
static size_t device_memory(int d) {
    static const std::vector<size_t> v = [] {
        std::vector<size_t> r;
        const char *e = getenv("EMU_DEVICE_MEMORY");
        for (char *end; e && *e; e = *end == ',' ? end + 1 : end) {
            r.push_back((size_t)strtoull(e, &end, 10));
            if (end == e) break;
        }
        if (r.empty()) r.push_back((size_t)80 << 30);
        return r;
    }();
    return v[(size_t)d < v.size() ? (size_t)d : v.size() - 1];
}
extern "C" cudaError_t cudaMalloc(void **p, size_t n) {
    *p = NULL;
    if (device_dead()) return set_err(cudaErrorLaunchFailure);
    const int d = t_dev;
    {
        std::lock_guard<std::mutex> l(g_mem_mu);
        if (n > device_memory(d) || g_dev_bytes[d] + n > device_memory(d)) return set_err(cudaErrorMemoryAllocation);
    }
    void *q = NULL;
    if (posix_memalign(&q, 256, n ? n : 1)) return set_err(cudaErrorMemoryAllocation);
    memset(q, 0xff, n);  // NaN as float, double and bf16: unwritten elements show up
    std::lock_guard<std::mutex> l(g_mem_mu);
    g_dev[(uintptr_t)q] = n ? n : 1;
    g_owner[(uintptr_t)q] = d;
    g_dev_bytes[d] += n;
    *p = q;
    return cudaSuccess;
}
extern "C" cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    device_sync_point();
    drain_all(false);  // cudaFree synchronises the device: queued work may still use the allocation
    {
        std::lock_guard<std::mutex> l(g_mem_mu);
        auto it = g_dev.find((uintptr_t)p);
        if (it == g_dev.end()) return misuse(cudaErrorInvalidValue, "cudaFree(%p): not a cudaMalloc allocation", p);
        const int d = g_owner[it->first];  // any device's memory may be freed from any current device (UVA)
        g_dev_bytes[d] -= it->second;
        g_owner.erase(it->first);
        g_dev.erase(it);
    }
    free(p);
    return cudaSuccess;
}
// As CUDA 11+: memory nobody allocated is cudaMemoryTypeUnregistered (device -2), not an error.
extern "C" cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *a, const void *p) {
    if (!a) return misuse(cudaErrorInvalidValue, "cudaPointerGetAttributes(NULL attributes)");
    std::lock_guard<std::mutex> l(g_mem_mu);
    a->type = cudaMemoryTypeUnregistered;
    a->device = -2;
    a->devicePointer = a->hostPointer = NULL;
    if (in_map(g_dev, p, 1)) {
        auto it = g_dev.upper_bound((uintptr_t)p);
        --it;
        a->type = cudaMemoryTypeDevice;
        a->device = g_owner[it->first];
        a->devicePointer = (void *)p;
    } else if (in_map(g_pinned, p, 1)) {
        a->type = cudaMemoryTypeHost;
        a->device = t_dev;
        a->devicePointer = a->hostPointer = (void *)p;
    }
    return cudaSuccess;
}
extern "C" cudaError_t cudaMallocHost(void **p, size_t n) {
    *p = malloc(n ? n : 1);
    if (!*p) return set_err(cudaErrorMemoryAllocation);
    memset(*p, 0xff, n);
    std::lock_guard<std::mutex> l(g_mem_mu);
    g_pinned[(uintptr_t)*p] = n ? n : 1;
    return cudaSuccess;
}
extern "C" cudaError_t cudaFreeHost(void *p) {
    if (!p) return cudaSuccess;
    device_sync_point();
    drain_all(false);
    {
        std::lock_guard<std::mutex> l(g_mem_mu);
        auto it = g_pinned.find((uintptr_t)p);
        if (it == g_pinned.end()) return misuse(cudaErrorInvalidValue, "cudaFreeHost(%p): not a cudaMallocHost allocation", p);
        g_pinned.erase(it);
    }
    free(p);
    return cudaSuccess;
}
extern "C" cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b) {
    std::lock_guard<std::mutex> l(g_mem_mu);
    *total_b = device_memory(t_dev);
    *free_b = *total_b - g_dev_bytes[t_dev];
    return cudaSuccess;
}
static cudaError_t check_copy(void *dst, const void *src, size_t n, enum cudaMemcpyKind k, const char *who) {
    if (n == 0) return cudaSuccess;
    const bool dd = emu_is_device_range(dst, n), sd = emu_is_device_range(src, n);
    const bool dh = host_side(dst, n), sh = host_side(src, n);
    bool ok = true;
    switch (k) {
    case cudaMemcpyHostToDevice: ok = dd && sh; break;
    case cudaMemcpyDeviceToHost: ok = dh && sd; break;
    case cudaMemcpyDeviceToDevice: ok = dd && sd; break;
    case cudaMemcpyHostToHost: ok = dh && sh; break;
    case cudaMemcpyDefault: ok = (dd || dh) && (sd || sh); break;
    }
    if (!ok)
        return misuse(cudaErrorInvalidValue,
                      "%s(dst %p, src %p, %zu bytes, kind %d): dst is %s, src is %s", who, dst, src, n, (int)k,
                      dd ? "device" : dh ? "host" : "a partial device range",
                      sd ? "device" : sh ? "host" : "a partial device range");
    return cudaSuccess;
}

// Graph capture: while a stream captures, launches and async copies are recorded instead of run. A capture is
// device-scoped, as measured on NVIDIA GPUs whatever the capture mode: a device-wide synchronisation by another
// thread while it is open on the same device (cudaDeviceSynchronize, cudaMemcpy, cudaMemset, cudaFree,
// cudaFreeHost, cudaStreamSynchronize of the legacy stream) invalidates it; its later work is then refused with
// cudaErrorStreamCaptureInvalidated, and so is cudaStreamEndCapture, which gives no graph.
// EMU_CAPTURE_INVALIDATE_AT=K (read at each cudaStreamBeginCapture, so a test may set it around the calls it means):
// the capture is invalidated at its K-th operation, as if another thread had synchronised the device just then;
// the race itself is timing-dependent, this makes its consequence happen every time.
struct emu_graph {
    std::vector<std::function<void()>> ops;
    long kernels = 0;  // kernel launches among ops: each replay counts them as launches (EMU_DEVICE_FAIL)
};
struct emu_capture {
    emu_graph *g;
    cudaStream_t s;
    std::atomic<bool> invalid{false};
    long ops = 0, invalidate_at = 0;  // operations recorded or refused; EMU_CAPTURE_INVALIDATE_AT
};
static thread_local emu_capture *t_capture;
static std::mutex g_cap_mu;
static std::vector<emu_capture *> g_captures;  // open captures, every thread's
static bool recording(cudaStream_t s) { return t_capture && s == t_capture->s; }
// an operation on the capturing stream: false if the capture is (now) invalid
static bool capture_op(void) {
    if (++t_capture->ops == t_capture->invalidate_at) t_capture->invalid = true;
    return !t_capture->invalid;
}
// a device-wide synchronisation by this thread: every other thread's capture on its current device is invalid
static void device_sync_point(void) {
    std::lock_guard<std::mutex> l(g_cap_mu);
    for (emu_capture *c : g_captures)
        if (c != t_capture && c->s->dev == t_dev) c->invalid = true;
}

// Queues op on stream s (see "streams: deferred work"): recorded while s captures, run at once in sync mode or on
// the legacy stream (after every blocking stream's queued work, which the legacy stream waits for).
static cudaError_t enqueue(cudaStream_t s, std::function<void()> op) {
    if (recording(s)) {
        if (!capture_op()) return set_err(cudaErrorStreamCaptureInvalidated);
        t_capture->g->ops.push_back(std::move(op));
        return cudaSuccess;
    }
    if (!lazy_streams()) {
        op();
        return cudaSuccess;
    }
    if (!s) {
        drain_all(true);
        op();
        return cudaSuccess;
    }
    std::lock_guard<std::recursive_mutex> l(g_q_mu);
    s->q.push_back(std::move(op));
    s->enq++;
    return cudaSuccess;
}
static bool pinned(const void *p, size_t n) {
    std::lock_guard<std::mutex> l(g_mem_mu);
    return in_map(g_pinned, p, n);
}

extern "C" cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind k) {
    if (device_dead()) return set_err(cudaErrorLaunchFailure);
    if (t_capture) return misuse(cudaErrorStreamCaptureUnsupported, "cudaMemcpy during stream capture");
    cudaError_t e = check_copy(dst, src, n, k, "cudaMemcpy");
    device_sync_point();
    if (e == cudaSuccess && n) {
        if (lazy_streams()) drain_all(true);  // the legacy stream: after every blocking stream's work
        memmove(dst, src, n);
    }
    return e;
}
// As CUDA: from pageable host memory the source is staged before the call returns (the host may reuse it at
// once); to pageable host memory the call returns once the copy is done (so the stream's earlier work is run
// first); pinned memory and device-to-device copies are queued, their bytes read when they run.
extern "C" cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind k, cudaStream_t s) {
    if (device_dead()) return set_err(cudaErrorLaunchFailure);
    cudaError_t e = check_copy(dst, src, n, k, "cudaMemcpyAsync");
    if (e != cudaSuccess || !n) return e;
    const bool from_host = !emu_is_device_range(src, n), to_host = !emu_is_device_range(dst, n);
    if (from_host && !pinned(src, n) && !recording(s)) {
        auto staged = std::make_shared<std::vector<unsigned char>>((const unsigned char *)src,
                                                                  (const unsigned char *)src + n);
        return enqueue(s, [=] { memmove(dst, staged->data(), n); });
    } else if (to_host && !pinned(dst, n) && !recording(s)) {
        e = enqueue(s, [=] { memmove(dst, src, n); });
        if (lazy_streams() && s) drain(s);
        return e;
    }
    return enqueue(s, [=] { memmove(dst, src, n); });
}
extern "C" cudaError_t cudaMemset(void *p, int v, size_t n) {
    if (device_dead()) return set_err(cudaErrorLaunchFailure);
    if (n && !emu_is_device_range(p, n)) return misuse(cudaErrorInvalidValue, "cudaMemset(%p, %zu bytes): not device memory", p, n);
    device_sync_point();
    if (lazy_streams()) drain_all(true);
    memset(p, v, n);
    return cudaSuccess;
}
extern "C" cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s) {
    if (device_dead()) return set_err(cudaErrorLaunchFailure);
    if (n && !emu_is_device_range(p, n)) return misuse(cudaErrorInvalidValue, "cudaMemsetAsync(%p, %zu bytes): not device memory", p, n);
    return enqueue(s, [=] { memset(p, v, n); });
}

// ---- streams, events, graphs ------------------------------------------------------------------------------
extern "C" cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, 0); }
extern "C" cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
    *s = new emu_stream{flags, t_dev};
    std::lock_guard<std::recursive_mutex> l(g_q_mu);
    g_streams.push_back(*s);
    return cudaSuccess;
}
extern "C" cudaError_t cudaStreamDestroy(cudaStream_t s) {
    if (!s) return misuse(cudaErrorInvalidValue, "cudaStreamDestroy(NULL)");
    drain(s);  // CUDA finishes the queued work; the object stays (an event may still name it)
    return cudaSuccess;
}
extern "C" cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    if (recording(s)) return misuse(cudaErrorStreamCaptureUnsupported, "cudaStreamSynchronize during capture");
    if (device_dead()) return set_err(cudaErrorLaunchFailure);
    if (s) {
        drain(s);
    } else {
        device_sync_point();
        drain_all(true);
    }
    return g_last;
}
extern "C" cudaError_t cudaDeviceSynchronize(void) {
    if (t_capture) return misuse(cudaErrorStreamCaptureUnsupported, "cudaDeviceSynchronize during capture");
    if (device_dead()) return set_err(cudaErrorLaunchFailure);
    device_sync_point();
    drain_all(false);
    return g_last;
}
extern "C" cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned) {
    if (!e) return misuse(cudaErrorInvalidValue, "cudaStreamWaitEvent(NULL event)");
    if (recording(s) || !e->s || e->s == s) return cudaSuccess;  // captured waits: the graph runs in order
    emu_stream *es = e->s;
    const uint64_t seq = e->seq;  // the record this wait refers to: the last one before the call, as in CUDA
    return enqueue(s, [es, seq] { run_upto(es, seq); });
}
extern "C" cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, 0); }
extern "C" cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) {
    *e = new emu_event{std::chrono::steady_clock::now(), !(flags & cudaEventDisableTiming), t_dev};
    return cudaSuccess;
}
static void event_wait(cudaEvent_t e) {
    if (e->s) run_upto(e->s, e->seq);
}
extern "C" cudaError_t cudaEventDestroy(cudaEvent_t e) {
    if (!e) return misuse(cudaErrorInvalidValue, "cudaEventDestroy(NULL)");
    event_wait(e);  // its pending record writes into it
    delete e;
    return cudaSuccess;
}
extern "C" cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    if (!e) return misuse(cudaErrorInvalidValue, "cudaEventRecord(NULL)");
    if (device_dead()) return set_err(cudaErrorLaunchFailure);
    if ((s ? s->dev : t_dev) != e->dev)
        return misuse(cudaErrorInvalidResourceHandle, "cudaEventRecord: an event of device %d on a stream of device %d",
                      e->dev, s ? s->dev : t_dev);
    if (recording(s))  // an event node: nothing to do when the graph runs in order
        return capture_op() ? cudaSuccess : set_err(cudaErrorStreamCaptureInvalidated);
    if (lazy_streams() && s) {
        std::lock_guard<std::recursive_mutex> l(g_q_mu);
        enqueue(s, [e] { e->t = std::chrono::steady_clock::now(); });
        e->s = s;
        e->seq = s->enq;
        return cudaSuccess;
    }
    if (lazy_streams()) drain_all(true);
    e->s = nullptr;
    e->t = std::chrono::steady_clock::now();
    return cudaSuccess;
}
extern "C" cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    if (!e) return misuse(cudaErrorInvalidValue, "cudaEventSynchronize(NULL)");
    if (device_dead()) return set_err(cudaErrorLaunchFailure);
    event_wait(e);
    return g_last;
}
extern "C" cudaError_t cudaEventQuery(cudaEvent_t e) {
    if (!e) return misuse(cudaErrorInvalidValue, "cudaEventQuery(NULL)");
    event_wait(e);  // always "complete": running the work now is an order CUDA allows too
    return cudaSuccess;
}
extern "C" cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    if (!a || !b || !a->timing || !b->timing)
        return misuse(cudaErrorInvalidValue, "cudaEventElapsedTime: an event without timing");
    if (a->dev != b->dev)
        return misuse(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: events of devices %d and %d", a->dev, b->dev);
    event_wait(a);
    event_wait(b);
    *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
    return cudaSuccess;
}
extern "C" cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode) {
    if (t_capture) return misuse(cudaErrorInvalidValue, "cudaStreamBeginCapture: already capturing");
    if (!s) return misuse(cudaErrorStreamCaptureUnsupported, "cudaStreamBeginCapture on the legacy stream");
    t_capture = new emu_capture;
    t_capture->g = new emu_graph;
    t_capture->s = s;
    const char *at = getenv("EMU_CAPTURE_INVALIDATE_AT");
    t_capture->invalidate_at = at ? atol(at) : 0;
    std::lock_guard<std::mutex> l(g_cap_mu);
    g_captures.push_back(t_capture);
    return cudaSuccess;
}
extern "C" cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g) {
    if (!t_capture || s != t_capture->s) return misuse(cudaErrorInvalidValue, "cudaStreamEndCapture: not capturing");
    {
        std::lock_guard<std::mutex> l(g_cap_mu);
        g_captures.erase(std::find(g_captures.begin(), g_captures.end(), t_capture));
    }
    emu_capture *c = t_capture;
    t_capture = NULL;
    const bool invalid = c->invalid;
    *g = invalid ? NULL : c->g;
    if (invalid) delete c->g;
    delete c;
    return invalid ? set_err(cudaErrorStreamCaptureInvalidated) : cudaSuccess;
}
extern "C" cudaError_t cudaGraphInstantiate(cudaGraphExec_t *x, cudaGraph_t g, unsigned long long) {
    *x = new emu_graph(*g);
    return cudaSuccess;
}
extern "C" cudaError_t cudaGraphLaunch(cudaGraphExec_t x, cudaStream_t s) {
    if (device_dead()) return set_err(cudaErrorLaunchFailure);
    if (recording(s)) {
        if (!capture_op()) return set_err(cudaErrorStreamCaptureInvalidated);
        t_capture->g->ops.insert(t_capture->g->ops.end(), x->ops.begin(), x->ops.end());
        t_capture->g->kernels += x->kernels;
        return cudaSuccess;
    }
    for (long i = 0; i < x->kernels; i++)  // the replayed kernels are launches of the device, as on a GPU
        if (launch_kills_device()) return set_err(cudaErrorLaunchFailure);
    auto ops = std::make_shared<std::vector<std::function<void()>>>(x->ops);  // the exec may be destroyed first
    return enqueue(s, [ops] {
        for (auto &op : *ops) op();
    });
}
extern "C" cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    delete g;
    return cudaSuccess;
}
extern "C" cudaError_t cudaGraphExecDestroy(cudaGraphExec_t x) {
    delete x;
    return cudaSuccess;
}

// ---- kernel launches --------------------------------------------------------------------------------------
// Each CUDA thread of a block is a fiber (ucontext) on the calling host thread; a fiber runs until it reaches a
// barrier or returns, then the next one runs. A barrier opens when every unfinished thread it covers waits on
// it; if no fiber can run and no barrier can open, the threads wait on different barriers: a deadlock, reported
// with the kernel's name. Deterministic (same interleaving every run) and without system calls per barrier.
thread_local emu_dim3 threadIdx, blockIdx;
emu_dim3 blockDim, gridDim;

namespace {
enum FiberState { RUNNABLE, WAIT_BLOCK, WAIT_WARP, DONE };
struct emu_copy {
    void *dst;
    const void *src;
};
struct Fiber {
    ucontext_t ctx;
    FiberState state;
    unsigned tid;
    void *fake_stack;                                 // ASan's per-fiber fake stack
    std::deque<std::vector<emu_copy>> groups;         // cp.async groups committed, not yet waited for
    std::vector<emu_copy> open;                       // cp.async copies issued since the last commit
};
struct Launch {
    const char *name;
    dim3 block;
    unsigned nthreads;
    unsigned char *smem_buf;
    const std::function<void()> *body;
    std::vector<Fiber> fibers;
    std::vector<uint64_t> slots;  // shuffle exchange, one per thread
    std::vector<unsigned char> wide;  // emu_warp_arrive, 32 bytes per thread
    std::vector<int> arrived;         // per warp
    ucontext_t sched;
    void *sched_fake_stack;
    const void *sched_stack_bottom;
    size_t sched_stack_size;
};
thread_local Launch *g_launch;  // per host thread: two host threads may launch at once
thread_local Fiber *g_cur;
std::map<const void *, int> g_func_smem;  // (set at setup, before any launch thread reads it)  // cudaFuncAttributeMaxDynamicSharedMemorySize per kernel
// 64 KB per CUDA thread (kernel locals, WMMA fragments, ASan redzones), below it a guard page. Kept small
// because ASan's swapcontext interceptor clears the shadow of the whole target stack at every switch.
const size_t FIBER_STACK = 64 * 1024, FIBER_GUARD = 4096;
struct Stacks {  // fiber stacks, reused across launches on this host thread
    std::vector<unsigned char *> v;
    ~Stacks() {
        for (unsigned char *p : v) munmap(p - FIBER_GUARD, FIBER_STACK + FIBER_GUARD);
    }
};
thread_local Stacks g_stacks_owner;
thread_local std::vector<unsigned char *> &g_stacks = g_stacks_owner.v;

#ifdef __SANITIZE_ADDRESS__
void start_switch(void **save, const void *bottom, size_t size) { __sanitizer_start_switch_fiber(save, bottom, size); }
void finish_switch(void *save, const void **bottom, size_t *size) { __sanitizer_finish_switch_fiber(save, bottom, size); }
#else
void start_switch(void **, const void *, size_t) {}
void finish_switch(void *, const void **, size_t *) {}
#endif

// fiber -> scheduler
void yield_to_sched(bool finished) {
    Launch &L = *g_launch;
    Fiber *f = g_cur;
    start_switch(finished ? NULL : &f->fake_stack, L.sched_stack_bottom, L.sched_stack_size);
    swapcontext(&f->ctx, &L.sched);
    finish_switch(f->fake_stack, NULL, NULL);
}
void fiber_main() {
    finish_switch(NULL, &g_launch->sched_stack_bottom, &g_launch->sched_stack_size);
    (*g_launch->body)();
    g_cur->state = DONE;
    yield_to_sched(true);
}
[[noreturn]] void deadlock(const Launch &L) {
    fprintf(stderr, "emu-runtime: deadlock in kernel %s, block (%u, %u, %u): threads wait on different barriers:",
            L.name, blockIdx.x, blockIdx.y, blockIdx.z);
    for (const Fiber &f : L.fibers)
        if (f.state != DONE && f.tid < 64)
            fprintf(stderr, " t%u:%s", f.tid, f.state == WAIT_BLOCK ? "__syncthreads" : "warp");
    fprintf(stderr, "\n");
    abort();
}
// Threads run in index order in every other block and in reverse order in the rest, alternating across launches
// too (EMU_THREAD_ORDER=forward: always in order). Both are orders a GPU may produce, so a correct kernel passes
// either way; a missing barrier between a write and another thread's read (or a read and another thread's
// overwrite) gives the wrong value in one of them.
bool reverse_threads(unsigned long long block) {
    static const bool alternate = [] {
        const char *e = getenv("EMU_THREAD_ORDER");
        return !(e && !strcmp(e, "forward"));
    }();
    return alternate && (block & 1);
}
void run_block(Launch &L, bool reverse) {
    const unsigned n = L.nthreads;
    for (unsigned t = 0; t < n; t++) {
        Fiber &f = L.fibers[t];
        f.state = RUNNABLE;
        f.tid = t;
        f.fake_stack = NULL;
        f.groups.clear();
        f.open.clear();
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = g_stacks[t];
        f.ctx.uc_stack.ss_size = FIBER_STACK;
        f.ctx.uc_link = NULL;
        makecontext(&f.ctx, fiber_main, 0);
    }
    unsigned alive = n;
    while (alive) {
        bool ran = false;
        for (unsigned k = 0; k < n; k++) {
            const unsigned t = reverse ? n - 1 - k : k;
            Fiber &f = L.fibers[t];
            if (f.state != RUNNABLE) continue;
            ran = true;
            g_cur = &f;
            threadIdx = {t % L.block.x, (t / L.block.x) % L.block.y, t / (L.block.x * L.block.y)};
            start_switch(&L.sched_fake_stack, g_stacks[t], FIBER_STACK);
            swapcontext(&L.sched, &f.ctx);
            finish_switch(L.sched_fake_stack, NULL, NULL);
            if (f.state == DONE) alive--;
        }
        if (ran || !alive) continue;
        // nothing runnable: open every warp barrier whose unfinished lanes all wait on it, else the block barrier
        bool opened = false;
        for (unsigned w0 = 0; w0 < n; w0 += 32) {
            bool all = true, any = false;
            for (unsigned t = w0; t < std::min(n, w0 + 32); t++) {
                if (L.fibers[t].state == DONE) continue;
                if (L.fibers[t].state != WAIT_WARP) all = false;
                else any = true;
            }
            if (all && any) {
                for (unsigned t = w0; t < std::min(n, w0 + 32); t++)
                    if (L.fibers[t].state == WAIT_WARP) L.fibers[t].state = RUNNABLE;
                opened = true;
            }
        }
        if (opened) continue;
        for (const Fiber &f : L.fibers)
            if (f.state != DONE && f.state != WAIT_BLOCK) deadlock(L);
        for (Fiber &f : L.fibers)
            if (f.state == WAIT_BLOCK) f.state = RUNNABLE;
    }
}
}  // namespace

void __syncthreads() {
    g_cur->state = WAIT_BLOCK;
    yield_to_sched(false);
}
void __syncwarp(unsigned) {
    g_cur->state = WAIT_WARP;
    yield_to_sched(false);
}
int emu_lane(void) { return (int)(g_cur->tid % 32); }
uint64_t emu_warp_exchange(uint64_t mine, int src) {
    Launch &L = *g_launch;
    const unsigned base = g_cur->tid & ~31u;
    L.slots[g_cur->tid] = mine;
    __syncwarp(0xffffffffu);
    uint64_t r = src >= 0 && src < 32 && base + src < L.nthreads ? L.slots[base + src] : mine;
    __syncwarp(0xffffffffu);
    return r;
}
const unsigned char *emu_warp_arrive(const void *mine, unsigned bytes) {
    Launch &L = *g_launch;
    const unsigned base = g_cur->tid & ~31u;
    bool bad = bytes > 32 || base + 32 > L.nthreads;
    for (unsigned t = base; t < base + 32 && !bad; t++) bad = L.fibers[t].state == DONE;
    if (bad) {
        fprintf(stderr, "emu-runtime: kernel %s: a warp exchange of %u bytes needs all 32 lanes of a full warp (an "
                "ldmatrix / mma.sync after a lane returned?)\n", L.name, bytes);
        abort();
    }
    memcpy(&L.wide[32 * g_cur->tid], mine, bytes);
    if (++L.arrived[base / 32] < 32) return NULL;
    L.arrived[base / 32] = 0;
    return &L.wide[32 * base];
}
void emu_warp_done() { __syncwarp(0xffffffffu); }
void *emu_dyn_smem(void) { return g_launch->smem_buf; }

cudaError_t emu_func_set_attribute(const void *fn, cudaFuncAttribute a, int v) {
    if (a != cudaFuncAttributeMaxDynamicSharedMemorySize)
        return misuse(cudaErrorInvalidValue, "cudaFuncSetAttribute(%d): not emulated", (int)a);
    if (v < 0 || (size_t)v > EMU_SMEM_OPTIN)
        return misuse(cudaErrorInvalidValue, "cudaFuncSetAttribute: %d bytes of dynamic shared memory > %zu opt-in", v,
                      EMU_SMEM_OPTIN);
    g_func_smem[fn] = v;
    return cudaSuccess;
}

static void run_launch(const char *name, dim3 grid, dim3 block, size_t smem, const std::function<void()> &body) {
    Launch L;
    L.name = name;
    L.block = block;
    L.nthreads = block.x * block.y * block.z;
    L.body = &body;
    L.smem_buf = NULL;
    if (smem && posix_memalign((void **)&L.smem_buf, 256, smem)) abort();
    L.fibers.resize(L.nthreads);
    L.slots.assign(L.nthreads, 0);
    L.wide.assign(32 * (size_t)L.nthreads, 0);
    L.arrived.assign((L.nthreads + 31) / 32, 0);
    L.sched_fake_stack = NULL;
    L.sched_stack_bottom = NULL;
    L.sched_stack_size = 0;
    while (g_stacks.size() < L.nthreads) {
        void *p = mmap(NULL, FIBER_STACK + FIBER_GUARD, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED || mprotect(p, FIBER_GUARD, PROT_NONE)) abort();  // an overflow faults, not corrupts
        g_stacks.push_back((unsigned char *)p + FIBER_GUARD);
    }
    gridDim = {grid.x, grid.y, grid.z};
    blockDim = {block.x, block.y, block.z};
    Launch *outer = g_launch;
    g_launch = &L;
    const unsigned long long nblocks = (unsigned long long)grid.x * grid.y * grid.z;
    static thread_local unsigned long long launches;  // so that one-block launches alternate too
    const unsigned long long first = launches++;
    for (unsigned long long b = 0; b < nblocks; b++) {
        blockIdx = {(unsigned)(b % grid.x), (unsigned)((b / grid.x) % grid.y),
                    (unsigned)(b / ((unsigned long long)grid.x * grid.y))};
        if (smem) memset(L.smem_buf, 0xff, smem);  // NaN: shared memory holds garbage at block start
        run_block(L, reverse_threads(first + b));
    }
    g_launch = outer;
    free(L.smem_buf);
}

void emu_launch(const void *fn, const char *name, dim3 grid, dim3 block, size_t smem, cudaStream_t s, emu_bound b) {
    const bool rec = recording(s);  // a captured launch runs (and counts for EMU_DEVICE_FAIL) when its graph does
    if (rec ? device_dead() : launch_kills_device()) {
        set_err(cudaErrorLaunchFailure);
        return;
    }
    if (s && s->dev != t_dev) {
        misuse(cudaErrorInvalidResourceHandle, "launch of %s on a stream of device %d while device %d is current "
               "(hint: cudaSetDevice first)", name, s->dev, t_dev);
        return;
    }
    for (const void *p : b.ptrs)
        if (foreign(p, t_dev)) {
            misuse(cudaErrorIllegalAddress, "launch of %s on device %d with a pointer %p into device %d's memory (no "
                   "peer access)", name, t_dev, p, owner_of(p));
            return;
        }
    std::function<void()> body = std::move(b.body);
    const unsigned long long nthreads = (unsigned long long)block.x * block.y * block.z;
    if (nthreads == 0 || nthreads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
        grid.y > 65535 || grid.z > 65535) {
        misuse(cudaErrorInvalidConfiguration, "launch of %s: grid (%u, %u, %u), block (%u, %u, %u)", name, grid.x,
               grid.y, grid.z, block.x, block.y, block.z);
        return;
    }
    if (smem > EMU_SMEM_DEFAULT) {
        auto it = g_func_smem.find(fn);
        const size_t allowed = it == g_func_smem.end() ? EMU_SMEM_DEFAULT : (size_t)it->second;
        if (smem > allowed) {
            misuse(cudaErrorInvalidValue, "launch of %s: %zu bytes of dynamic shared memory, %zu allowed (hint: "
                   "cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize))", name, smem, allowed);
            return;
        }
    }
    std::string keep(name);
    // refused (an invalidated capture): the last error says
    if (enqueue(s, [=] { run_launch(keep.c_str(), grid, block, smem, body); }) == cudaSuccess && rec)
        t_capture->g->kernels++;
}

// ---- cp.async (same semantics as tests/emu/convnext_mlp_emu.cpp) -------------------------------------------
void __pipeline_memcpy_async(void *dst, const void *src, size_t bytes) {
    if (bytes != 16 || (uintptr_t)dst % 16 || (uintptr_t)src % 16) {
        fprintf(stderr, "emu-runtime: %s: cp.async of %zu bytes, dst %p, src %p (16 bytes, 16-aligned expected)\n",
                g_launch ? g_launch->name : "?", bytes, dst, src);
        abort();
    }
    unsigned char probe[16];
    memcpy(probe, src, 16);  // AddressSanitizer checks the source at issue
    for (int i = 0; i < 8; i++) ((uint16_t *)dst)[i] = 0x7fc0;  // NaN until the group lands
    g_cur->open.push_back({dst, src});
}
void __pipeline_commit() {
    g_cur->groups.push_back(g_cur->open);
    g_cur->open.clear();
}
void __pipeline_wait_prior(size_t prior) {
    while (g_cur->groups.size() > prior) {
        for (const emu_copy &c : g_cur->groups.front()) memcpy(c.dst, c.src, 16);
        g_cur->groups.pop_front();
    }
}

// ---- cuBLAS -----------------------------------------------------------------------------------------------
struct emu_blas {
    int math;
    cudaStream_t stream;  // cublasSetStream: where its products are queued
    int dev;              // current at cublasCreate: the handle works only while it is current
};
struct emu_blaslt {
    int unused;
};
extern "C" cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = new emu_blas{0, nullptr, t_dev};
    return CUBLAS_STATUS_SUCCESS;
}
extern "C" cublasStatus_t cublasDestroy(cublasHandle_t h) {
    if (h && h->dev != t_dev) {
        misuse(cudaErrorInvalidDevice, "cublasDestroy: a handle of device %d while device %d is current", h->dev, t_dev);
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
extern "C" cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
extern "C" cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->math = (int)m;
    return CUBLAS_STATUS_SUCCESS;
}
extern "C" const char *cublasGetStatusName(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_ERROR(emu)"; }
extern "C" const char *cublasGetStatusString(cublasStatus_t s) { return cublasGetStatusName(s); }
extern "C" cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) {
    *h = new emu_blaslt{0};
    return CUBLAS_STATUS_SUCCESS;
}
extern "C" cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

static double ld(const float *p) { return *p; }
static double ld(const double *p) { return *p; }
static double ld(const __nv_bfloat16 *p) { return emu_bf2f(*p); }
static double ld(const __half *p) { return __half2float(*p); }
// Column-major C (m x n) = alpha op(A) op(B) + beta C, in double. Checks that each operand's extent is device memory.
template <typename TA, typename TC>
static cublasStatus_t gemm(const char *who, cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                           int k, double alpha, const TA *A, int lda, const TA *B, int ldb, double beta, TC *C, int ldc) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    const int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
    const int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
    if (m < 0 || n < 0 || k < 0 || lda < std::max(1, ar) || ldb < std::max(1, br) || ldc < std::max(1, m)) {
        misuse(cudaErrorInvalidValue, "%s: m %d n %d k %d lda %d ldb %d ldc %d", who, m, n, k, lda, ldb, ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (device_dead()) return CUBLAS_STATUS_EXECUTION_FAILED;
    if (h->dev != t_dev || (h->stream && h->stream->dev != h->dev)) {
        misuse(cudaErrorInvalidDevice, "%s: a handle of device %d (stream of device %d) while device %d is current",
               who, h->dev, h->stream ? h->stream->dev : h->dev, t_dev);
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    for (const void *p : {(const void *)A, (const void *)B, (const void *)C})
        if (foreign(p, h->dev)) {
            misuse(cudaErrorIllegalAddress, "%s: an operand in device %d's memory, the handle's device is %d", who,
                   owner_of(p), h->dev);
            return CUBLAS_STATUS_EXECUTION_FAILED;
        }
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    auto extent = [](int rows, int cols, int ldx, size_t sz) { return ((size_t)(cols - 1) * ldx + rows) * sz; };
    if ((k > 0 && (!emu_is_device_range(A, extent(ar, ac, lda, sizeof(TA))) ||
                   !emu_is_device_range(B, extent(br, bc, ldb, sizeof(TA))))) ||
        !emu_is_device_range(C, extent(m, n, ldc, sizeof(TC)))) {
        misuse(cudaErrorInvalidValue, "%s: an operand is not (entirely) in device memory (m %d n %d k %d)", who, m, n, k);
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    enqueue(h->stream, [=] {  // on the handle's stream, alpha and beta read at the call (host pointer mode)
        std::vector<double> a((size_t)m * k), b((size_t)k);
        for (int i = 0; i < m; i++)  // row i of op(A), contiguous in l
            for (int l = 0; l < k; l++)
                a[(size_t)i * k + l] = ld(ta == CUBLAS_OP_N ? A + i + (size_t)l * lda : A + l + (size_t)i * lda);
        for (int j = 0; j < n; j++) {
            for (int l = 0; l < k; l++) b[l] = ld(tb == CUBLAS_OP_N ? B + l + (size_t)j * ldb : B + j + (size_t)l * ldb);
            for (int i = 0; i < m; i++) {
                double s = 0;
                const double *ai = &a[(size_t)i * k];
                for (int l = 0; l < k; l++) s += ai[l] * b[l];
                TC *c = C + i + (size_t)j * ldc;
                *c = (TC)(alpha * s + (beta != 0 ? beta * (double)*c : 0.0));  // beta == 0: C is not read (may be NaN)
            }
        }
    });
    return CUBLAS_STATUS_SUCCESS;
}
extern "C" cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                      const float *al, const float *A, int lda, const float *B, int ldb,
                                      const float *be, float *C, int ldc) {
    return gemm("cublasSgemm", h, ta, tb, m, n, k, *al, A, lda, B, ldb, *be, C, ldc);
}
extern "C" cublasStatus_t cublasDgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                      const double *al, const double *A, int lda, const double *B, int ldb,
                                      const double *be, double *C, int ldc) {
    return gemm("cublasDgemm", h, ta, tb, m, n, k, *al, A, lda, B, ldb, *be, C, ldc);
}
extern "C" cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                       const void *alv, const void *A, cudaDataType at, int lda, const void *B,
                                       cudaDataType bt, int ldb, const void *bev, void *C, cudaDataType ct, int ldc,
                                       cublasComputeType_t compute, cublasGemmAlgo_t) {
    if (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_PEDANTIC) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (at != bt || ct != CUDA_R_32F || (at != CUDA_R_32F && at != CUDA_R_16BF && at != CUDA_R_16F))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    const double al = *(const float *)alv, be = *(const float *)bev;
    if (at == CUDA_R_16F)
        return gemm("cublasGemmEx(fp16)", h, ta, tb, m, n, k, al, (const __half *)A, lda, (const __half *)B, ldb, be,
                    (float *)C, ldc);
    if (at == CUDA_R_16BF)
        return gemm("cublasGemmEx(bf16)", h, ta, tb, m, n, k, al, (const __nv_bfloat16 *)A, lda,
                    (const __nv_bfloat16 *)B, ldb, be, (float *)C, ldc);
    return gemm("cublasGemmEx(fp32)", h, ta, tb, m, n, k, al, (const float *)A, lda, (const float *)B, ldb, be,
                (float *)C, ldc);
}

// ---- cuFFT ------------------------------------------------------------------------------------------------
namespace {
struct FftPlan {
    int n, idist, odist, batch;
    cufftType type;
    cudaStream_t stream;
    int dev;  // current at planning
};
std::mutex g_plans_mu;  // plans are made and used by several worker threads
std::map<int, FftPlan> g_plans;
int g_next_plan = 1;
}  // namespace
extern "C" cufftResult cufftPlanMany(cufftHandle *plan, int rank, int *n, int *inembed, int istride, int idist,
                                     int *onembed, int ostride, int odist, cufftType type, int batch) {
    (void)inembed, (void)onembed;
    if (rank != 1 || (type != CUFFT_D2Z && type != CUFFT_R2C) || istride != 1 || ostride != 1 || batch < 1 ||
        n[0] < 1 || idist < n[0] || odist < n[0] / 2 + 1)
        return CUFFT_INVALID_VALUE;
    std::lock_guard<std::mutex> l(g_plans_mu);
    *plan = g_next_plan++;
    g_plans[*plan] = {n[0], idist, odist, batch, type, nullptr, t_dev};
    return CUFFT_SUCCESS;
}
extern "C" cufftResult cufftSetStream(cufftHandle p, cudaStream_t s) {
    std::lock_guard<std::mutex> l(g_plans_mu);
    auto it = g_plans.find(p);
    if (it == g_plans.end()) return CUFFT_INVALID_PLAN;
    it->second.stream = s;
    return CUFFT_SUCCESS;
}
extern "C" cufftResult cufftDestroy(cufftHandle p) {
    std::lock_guard<std::mutex> l(g_plans_mu);
    auto it = g_plans.find(p);
    if (it == g_plans.end()) return CUFFT_INVALID_PLAN;
    if (it->second.dev != t_dev) {
        misuse(cudaErrorInvalidDevice, "cufftDestroy: a plan of device %d while device %d is current", it->second.dev, t_dev);
        return CUFFT_INVALID_PLAN;
    }
    g_plans.erase(it);
    return CUFFT_SUCCESS;
}
// in place, radix 2 (n a power of two), butterflies in T; twiddles computed in double and rounded once to T, as
// cuFFT's precomputed tables are
template <typename T> static void fft_rec(std::complex<T> *x, int n) {
    for (int i = 1, j = 0; i < n; i++) {
        int bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) std::swap(x[i], x[j]);
    }
    for (int len = 2; len <= n; len <<= 1) {
        for (int i = 0; i < len / 2; i++) {
            const std::complex<double> wd = std::polar(1.0, -2 * M_PI * i / len);
            const std::complex<T> w((T)wd.real(), (T)wd.imag());
            for (int s = i; s < n; s += len) {
                std::complex<T> u = x[s], v = x[s + len / 2] * w;
                x[s] = u + v;
                x[s + len / 2] = u - v;
            }
        }
    }
}
// The plan's checks and its transforms, queued on its stream: In real, Out {x, y} complex of the same precision.
template <typename In, typename Out>
static cufftResult exec_real(cufftHandle plan, cufftType type, const char *who, In *in, Out *out) {
    FftPlan p;
    {
        std::lock_guard<std::mutex> l(g_plans_mu);
        auto it = g_plans.find(plan);
        if (it == g_plans.end()) return CUFFT_INVALID_PLAN;
        p = it->second;
    }
    if (p.type != type) return CUFFT_INVALID_VALUE;
    if (device_dead()) return CUFFT_EXEC_FAILED;
    if (p.dev != t_dev || (p.stream && p.stream->dev != p.dev) || foreign(in, p.dev) || foreign(out, p.dev)) {
        misuse(cudaErrorInvalidDevice, "%s: a plan of device %d while device %d is current, or a stream or "
               "buffer of another device", who, p.dev, t_dev);
        return CUFFT_EXEC_FAILED;
    }
    const int nb = p.n / 2 + 1;
    if (!emu_is_device_range(in, ((size_t)(p.batch - 1) * p.idist + p.n) * sizeof(In)) ||
        !emu_is_device_range(out, ((size_t)(p.batch - 1) * p.odist + nb) * sizeof(Out))) {
        misuse(cudaErrorInvalidValue, "%s: input or output (batch %d) not in device memory", who, p.batch);
        return CUFFT_EXEC_FAILED;
    }
    enqueue(p.stream, [=] {  // on the plan's stream
        std::vector<std::complex<In>> x(p.n);
        const bool pow2 = (p.n & (p.n - 1)) == 0;
        for (int b = 0; b < p.batch; b++) {
            const In *src = in + (size_t)b * p.idist;
            Out *dst = out + (size_t)b * p.odist;
            if (pow2) {
                for (int i = 0; i < p.n; i++) x[i] = src[i];
                fft_rec(x.data(), p.n);
                for (int f = 0; f < nb; f++) dst[f] = {x[f].real(), x[f].imag()};
            } else {
                for (int f = 0; f < nb; f++) {
                    In re = 0, im = 0;
                    for (int i = 0; i < p.n; i++) {
                        double ph = -2 * M_PI * (double)(((long)f * i) % p.n) / p.n;
                        re += src[i] * (In)cos(ph);
                        im += src[i] * (In)sin(ph);
                    }
                    dst[f] = {re, im};
                }
            }
        }
    });
    return CUFFT_SUCCESS;
}
extern "C" cufftResult cufftExecD2Z(cufftHandle plan, cufftDoubleReal *in, cufftDoubleComplex *out) {
    return exec_real(plan, CUFFT_D2Z, "cufftExecD2Z", in, out);
}
extern "C" cufftResult cufftExecR2C(cufftHandle plan, cufftReal *in, cufftComplex *out) {
    return exec_real(plan, CUFFT_R2C, "cufftExecR2C", in, out);
}
