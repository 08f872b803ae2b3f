// Grid launches for the CPU emulation of CUDA kernels (tests/emu/*_emu.cpp), on top of cuda_emu.h's types:
// one fiber (ucontext) per CUDA thread on the one host thread, blocks one after another in a shuffled order
// (a kernel that depends on block order fails sometimes instead of never), and the synchronisation CUDA
// promises, no more (a fiber runs until it reaches a barrier; warps run greedily in a random order):
//   - __syncthreads is a barrier of the block's threads; a thread that returns while others wait at one (or
//     any barrier after one returned) aborts the run: CUDA leaves such a barrier undefined.
//   - a warp's lanes do NOT run in lock-step (independent thread scheduling, sm_70+): they meet only at
//     __syncwarp and the *_sync shuffles, each a barrier of the warp's 32 lanes (full mask only; a lane that
//     returned before its warp's shuffle aborts the run). Warp-synchronous code that skips __syncwarp reads
//     stale or poisoned shared memory here, as it may on the GPU.
//   - shared memory: static __shared__ variables live in one linker section that is filled with 0xff bytes
//     (NaN as float/double/bf16, -1 as int) before every block; dynamic shared memory (AC_DYNAMIC_SMEM) is a
//     fresh heap block of exactly the launch's size, same poison, so AddressSanitizer catches overruns.
//   - WMMA calls (cuda_emu.h: lane 0 computes the whole tile) start with a warp barrier: all 32 lanes must call.
//     So do the emulated ldmatrix / mma.sync (kernels/mma_16816.cuh): the warp's last lane to arrive computes
//     every lane's registers, then one warp barrier.
//   - atomics: plain read-modify-writes (fibers switch only at barriers).
// Build with AddressSanitizer + UBSan (tests/emu/run.sh): global arrays are exact-size host allocations, and
// float4/uint4/bfloat162 carry CUDA's alignment so a misaligned vector access is reported.
// Blind spots: blocks never overlap (races between blocks, e.g. one block writing what another reads, pass
// unless the shuffled order exposes them); static __shared__ arrays have no ASan redzones (GCC leaves globals in
// named sections uninstrumented); memory ordering is sequential (no fences needed); no timing, no occupancy,
// no register limits. EMU_SEED=n in the environment picks another schedule.
#pragma once
inline void emu_wmma_converged();
#define EMU_WARP_CONVERGED() emu_wmma_converged()
#include "cuda_emu.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <random>
#include <vector>

#include <ucontext.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#endif

#undef __shared__
#define __shared__ static __attribute__((section("emu_shared")))
#undef __align__
#define __align__(n) __attribute__((aligned(n)))
#define AC_DYNAMIC_SMEM(T, name) T *name = (T *)emu_dyn_smem
#ifndef __noinline__
#define __noinline__ __attribute__((noinline))
#endif

extern "C" char __start_emu_shared[] __attribute__((weak));
extern "C" char __stop_emu_shared[] __attribute__((weak));

// ---- types and math --------------------------------------------------------------------------------------------
struct alignas(16) float4 {
    float x, y, z, w;
};
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
struct alignas(8) float2 {
    float x, y;
};
template <class T>
inline T __ldg(const T *p) {
    return *p;
}
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }

// ---- identity and the scheduler ---------------------------------------------------------------------------------
// CUDA threads are fibers (ucontext) on the one host thread: a fiber runs until it reaches a barrier (or ends);
// the scheduler runs one random warp as far as it can go, then another (see emu_run_block), and releases a
// barrier once every thread it concerns has arrived. A kernel that skips a barrier thus reads what the other threads have not written yet
// (NaN poison) or overwrite data they have not read yet, whenever the order puts them that way round.
thread_local emu_dim3 threadIdx, blockIdx;
emu_dim3 blockDim, gridDim;
static int emu_tid;  // linear thread index in the block of the running fiber
static unsigned char *emu_dyn_smem;

[[noreturn]] inline void emu_fail(const char *what) {
    fprintf(stderr, "EMU FAILURE: %s (block %u,%u,%u thread %d)\n", what, blockIdx.x, blockIdx.y, blockIdx.z, emu_tid);
    fflush(stderr);
    abort();
}

enum emu_state { EMU_RUN, EMU_AT_BLOCK_BAR, EMU_AT_WARP_BAR, EMU_DONE };
struct emu_fiber {
    ucontext_t ctx;
    char *stack = nullptr;
    emu_state state = EMU_RUN;
};
// 64 KB: the kernels' frames (a thread's fragments and accumulators: a few KB) with ASan's redzones; small also
// because ASan's swapcontext interceptor clears the shadow of the whole target stack on every switch
#define EMU_STACK (64 * 1024)
struct emu_sched {
    ucontext_t main_ctx;
    const void *main_bottom = nullptr;
    size_t main_size = 0;
    std::vector<emu_fiber> f;
    int n = 0, cur = -1, done = 0;
    const std::function<void()> *job = nullptr;
    std::mt19937 rng{12345};
    ~emu_sched() {
        for (emu_fiber &x : f) free(x.stack);
    }
};
static emu_sched emu_s;
// EMU_SEED=n in the environment: another scheduling order (block order, warp order, lane order)
static const bool emu_seeded = [] {
    const char *e = getenv("EMU_SEED");
    if (e) emu_s.rng.seed((unsigned)strtoul(e, nullptr, 10));
    return true;
}();
struct emu_warp_slots {
    uint64_t slot[32];
    unsigned char wide[32][32];  // emu_warp_arrive
    int arrived;
};
static std::vector<emu_warp_slots> emu_slots;

static inline void emu_set_identity(int id) {
    emu_tid = id;
    const emu_dim3 b = blockDim;
    threadIdx = {(unsigned)id % b.x, (unsigned)id / b.x % b.y, (unsigned)id / (b.x * b.y)};
}

// fiber -> scheduler
static inline void emu_yield(emu_state st) {
    emu_fiber &me = emu_s.f[emu_s.cur];
    me.state = st;
#ifdef __SANITIZE_ADDRESS__
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(st == EMU_DONE ? nullptr : &fake, emu_s.main_bottom, emu_s.main_size);
    swapcontext(&me.ctx, &emu_s.main_ctx);
    __sanitizer_finish_switch_fiber(fake, &emu_s.main_bottom, &emu_s.main_size);
#else
    swapcontext(&me.ctx, &emu_s.main_ctx);
#endif
}

static void emu_fiber_entry() {
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_finish_switch_fiber(nullptr, &emu_s.main_bottom, &emu_s.main_size);
#endif
    (*emu_s.job)();
    emu_s.done++;
    emu_yield(EMU_DONE);
    emu_fail("finished fiber resumed");
}

void __syncthreads() {
    if (emu_s.done) emu_fail("__syncthreads after a thread of the block returned (not reached by every thread)");
    emu_yield(EMU_AT_BLOCK_BAR);
}

inline void emu_warp_barrier(unsigned mask) {
    if (mask != 0xffffffffu) emu_fail("warp collective with a partial mask (not emulated)");
    const int w0 = emu_tid & ~31;
    if (w0 + 32 > emu_s.n) emu_fail("full-mask warp collective in a partial warp");
    for (int i = w0; i < w0 + 32; i++)
        if (emu_s.f[i].state == EMU_DONE) emu_fail("warp collective after a lane of the warp returned");
    emu_yield(EMU_AT_WARP_BAR);
}
inline void __syncwarp(unsigned mask = 0xffffffffu) { emu_warp_barrier(mask); }
inline void emu_wmma_converged() { emu_warp_barrier(0xffffffffu); }

template <class T>
inline T emu_shfl(unsigned mask, T v, int src_lane) {
    static_assert(sizeof(T) <= 8, "shuffle of at most 64 bits");
    emu_warp_slots &w = emu_slots[emu_tid >> 5];
    memcpy(&w.slot[emu_tid & 31], &v, sizeof(T));
    emu_warp_barrier(mask);  // every lane has published its value
    T r;
    memcpy(&r, &w.slot[src_lane], sizeof(T));
    emu_warp_barrier(mask);  // every lane has read before any lane's next shuffle overwrites its slot
    return r;
}
inline const unsigned char *emu_warp_arrive(const void *mine, unsigned bytes) {
    if (bytes > 32) emu_fail("warp exchange of more than 32 bytes per lane");
    const int w0 = emu_tid & ~31;
    if (w0 + 32 > emu_s.n) emu_fail("full-mask warp collective in a partial warp");
    for (int i = w0; i < w0 + 32; i++)
        if (emu_s.f[i].state == EMU_DONE) emu_fail("warp collective after a lane of the warp returned");
    emu_warp_slots &w = emu_slots[emu_tid >> 5];
    memcpy(w.wide[emu_tid & 31], mine, bytes);
    if (++w.arrived < 32) return nullptr;
    w.arrived = 0;
    return &w.wide[0][0];
}
inline void emu_warp_done() { emu_warp_barrier(0xffffffffu); }
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    if (width != 32) emu_fail("shuffle width other than 32 not emulated");
    return emu_shfl(mask, v, (emu_tid & 31) ^ (lane_mask & 31));
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    if (width != 32) emu_fail("shuffle width other than 32 not emulated");
    const int lane = emu_tid & 31, src = lane + (int)delta;
    return emu_shfl(mask, v, src < 32 ? src : lane);
}
template <class T>
inline T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32) {
    if (width != 32) emu_fail("shuffle width other than 32 not emulated");
    return emu_shfl(mask, v, src_lane & 31);
}

// atomics: fibers switch only at barriers, so a read-modify-write is atomic as written
template <class T>
inline T atomicAdd(T *p, T v) {
    const T old = *p;
    *p = old + v;
    return old;
}
inline int atomicMax(int *p, int v) {
    const int old = *p;
    if (v > old) *p = v;
    return old;
}
inline int atomicCAS(int *p, int cmp, int v) {
    const int old = *p;
    if (old == cmp) *p = v;
    return old;
}

// Runs every thread of the current block to completion.
static void emu_run_block(int n, const std::function<void()> &job) {
    emu_s.n = n;
    emu_s.done = 0;
    emu_s.job = &job;
    if ((int)emu_s.f.size() < n) emu_s.f.resize(n);
    emu_slots.assign((n + 31) / 32, emu_warp_slots());
    for (int i = 0; i < n; i++) {
        emu_fiber &f = emu_s.f[i];
        if (!f.stack) f.stack = (char *)malloc(EMU_STACK);
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack;
        f.ctx.uc_stack.ss_size = EMU_STACK;
        f.ctx.uc_link = nullptr;
        makecontext(&f.ctx, emu_fiber_entry, 0);
        f.state = EMU_RUN;
    }
    // Greedy warps: pick a random warp with runnable lanes and run it as far as it can go (its lanes in a random
    // order, each to its next barrier; its warp barriers released as soon as all 32 lanes are there) before
    // another warp runs. Legal for CUDA (warps are independent between __syncthreads), and it maximises the skew
    // between warps: a warp that writes shared data another warp has not read yet does so here.
    const int nw = (n + 31) / 32;
    std::vector<int> warps, lanes;
    for (;;) {
        if (emu_s.done == n) break;
        warps.clear();
        for (int w = 0; w < nw; w++)
            for (int i = 32 * w; i < 32 * w + 32 && i < n; i++)
                if (emu_s.f[i].state == EMU_RUN) {
                    warps.push_back(w);
                    break;
                }
        if (warps.empty()) {  // everyone waits: only a block barrier reached by all can release them
            int at_block = 0;
            for (int i = 0; i < n; i++) at_block += emu_s.f[i].state == EMU_AT_BLOCK_BAR;
            if (at_block != n) {
                emu_tid = -1;
                emu_fail(at_block ? "deadlock: __syncthreads not reached by every thread (some returned or wait at a "
                                    "warp barrier)"
                                  : "deadlock: a warp barrier/shuffle not reached by every lane of its warp");
            }
            for (int i = 0; i < n; i++) emu_s.f[i].state = EMU_RUN;
            continue;
        }
        const int w = warps[std::uniform_int_distribution<int>(0, (int)warps.size() - 1)(emu_s.rng)];
        const int i0 = 32 * w, i1 = std::min(n, i0 + 32);
        for (;;) {
            lanes.clear();
            for (int i = i0; i < i1; i++)
                if (emu_s.f[i].state == EMU_RUN) lanes.push_back(i);
            std::shuffle(lanes.begin(), lanes.end(), emu_s.rng);
            for (int i : lanes) {
                emu_fiber &f = emu_s.f[i];
                emu_s.cur = i;
                emu_set_identity(i);
#ifdef __SANITIZE_ADDRESS__
                void *fake = nullptr;
                __sanitizer_start_switch_fiber(&fake, f.stack, EMU_STACK);
                swapcontext(&emu_s.main_ctx, &f.ctx);
                __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
                swapcontext(&emu_s.main_ctx, &f.ctx);
#endif
            }
            int at_warp = 0;
            for (int i = i0; i < i1; i++) at_warp += emu_s.f[i].state == EMU_AT_WARP_BAR;
            if (at_warp != 32) break;
            for (int i = i0; i < i1; i++) emu_s.f[i].state = EMU_RUN;
        }
    }
    emu_s.cur = -1;
}

// Runs body() (the kernel call) as every thread of every block of the grid, blocks one after another in a
// shuffled order; dyn_smem: bytes of dynamic shared memory (AC_DYNAMIC_SMEM). Returns when the grid is done
// (kernels on one stream run in order).
template <class F>
void emu_launch(emu_dim3 grid, emu_dim3 block, size_t dyn_smem, F body) {
    const long n = (long)block.x * block.y * block.z;
    if (n < 1 || n > 1024 || grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.y > 65535 || grid.z > 65535)
        emu_fail("invalid launch configuration");
    std::vector<emu_dim3> order;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) order.push_back({x, y, z});
    std::shuffle(order.begin(), order.end(), emu_s.rng);
    gridDim = grid;
    blockDim = block;
    const std::function<void()> job = [&] { body(); };
    for (const emu_dim3 &b : order) {
        blockIdx = b;
        char *sh0 = __start_emu_shared, *sh1 = __stop_emu_shared;
        if (sh0 && sh1 > sh0) memset(sh0, 0xff, (size_t)(sh1 - sh0));
        emu_dyn_smem = dyn_smem ? (unsigned char *)::operator new(dyn_smem, std::align_val_t(128)) : nullptr;
        if (emu_dyn_smem) memset(emu_dyn_smem, 0xff, dyn_smem);
        emu_run_block((int)n, job);
        if (emu_dyn_smem) ::operator delete(emu_dyn_smem, std::align_val_t(128));
        emu_dyn_smem = nullptr;
    }
}

// Device-memory stand-in: exact-size heap storage filled with 0xff bytes, as cudaMalloc leaves garbage.
template <class T>
struct emu_buf {
    std::vector<T> v;
    explicit emu_buf(size_t n = 0) { resize(n); }
    void resize(size_t n) {
        v.assign(n ? n : 1, T());
        memset((void *)v.data(), 0xff, sizeof(T) * v.size());
    }
    T *p() { return v.data(); }
    T &operator[](size_t i) { return v[i]; }
};
