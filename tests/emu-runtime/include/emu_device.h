// C++ side of the CPU stand-in CUDA runtime: what a kernel body sees. WMMA, bf16 and cp.async declarations come
// from tests/emu/cuda_emu.h (the per-kernel emulator's semantics: lane 0 of a warp computes whole 16x16 tiles,
// cp.async lands as late as the waits allow and reads NaN before). Shared memory: `__shared__` variables become
// thread-local function statics (a host thread runs one block at a time), the `extern __shared__` array a
// per-launch buffer that is NaN-poisoned before every block (transform.py rewrites its declaration and each
// <<<...>>> launch).
#ifndef EMU_DEVICE_H
#define EMU_DEVICE_H

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <tuple>
#include <utility>
#include <type_traits>
#include <vector>

#include "../../emu/cuda_emu.h"

#undef __shared__
// per host thread: the CLI's workers launch kernels from several threads at once, and each thread runs one block
// at a time, so a thread's copy is its running block's shared memory (plain statics would be shared by two
// workers' blocks running at the same time: a race of the emulation, not of the kernel)
#define __shared__ static thread_local
#undef __align__
#define __align__(n) __attribute__((aligned(n)))
#define __host__
#define __constant__ static

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
    dim3(const emu_dim3 &d) : x(d.x), y(d.y), z(d.z) {}
};
extern emu_dim3 blockDim, gridDim;

// aligned as CUDA's: UBSan (the emulation builds) then reports a misaligned vector access, which faults on a GPU
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(16) double2 { double x, y; };
inline float2 make_float2(float a, float b) { return {a, b}; }
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
inline int2 make_int2(int a, int b) { return {a, b}; }

// CUDA's integer/float min and max overloads (device code calls them unqualified)
template <typename A, typename B> inline typename std::common_type<A, B>::type min(A a, B b) { return b < a ? b : a; }
template <typename A, typename B> inline typename std::common_type<A, B>::type max(A a, B b) { return a < b ? b : a; }

template <typename T> inline T __ldg(const T *p) { return *p; }

// bf16 beyond cuda_emu.h
inline __nv_bfloat162 __float22bfloat162_rn(float2 v) { return __floats2bfloat162_rn(v.x, v.y); }

// warp collectives: every lane of the calling thread's warp must call them (an exited lane counts as arrived)
void __syncwarp(unsigned mask = 0xffffffffu);
uint64_t emu_warp_exchange(uint64_t mine, int src_lane);  // value of lane src_lane (own value if out of range)
int emu_lane(void);
template <typename T> inline T emu_shfl(T v, int src) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a type wider than 8 bytes");
    uint64_t u = 0;
    memcpy(&u, &v, sizeof v);
    u = emu_warp_exchange(u, src);
    T r;
    memcpy(&r, &u, sizeof r);
    return r;
}
template <typename T> inline T __shfl_xor_sync(unsigned, T v, int o, int w = 32) {
    int l = emu_lane();
    return emu_shfl(v, (l & ~(w - 1)) | ((l ^ o) & (w - 1)));
}
template <typename T> inline T __shfl_sync(unsigned, T v, int src, int w = 32) {
    int l = emu_lane();
    return emu_shfl(v, (l & ~(w - 1)) | (src & (w - 1)));
}
template <typename T> inline T __shfl_down_sync(unsigned, T v, unsigned d, int w = 32) {
    int l = emu_lane(), s = (l & (w - 1)) + (int)d;
    return emu_shfl(v, s < w ? l + (int)d : l);
}
template <typename T> inline T __shfl_up_sync(unsigned, T v, unsigned d, int w = 32) {
    int l = emu_lane(), s = (l & (w - 1)) - (int)d;
    return emu_shfl(v, s >= 0 ? l - (int)d : l);
}

// launches (transform.py: `k<<<g, b, smem, s>>>(args);` -> `EMU_LAUNCH(k, g, b, smem, s, args);`). The arguments
// are converted to the kernel's parameter types and copied when the launch is made, as CUDA does (this matters
// for graph capture, where the kernel runs later).
void *emu_dyn_smem(void);
// Kernels that declare their dynamic shared memory through AC_DYNAMIC_SMEM (kernels/*_kernel.cuh, written for
// tests/emu) get the per-launch buffer directly.
#define AC_DYNAMIC_SMEM(T, name) T *name = (T *)emu_dyn_smem()
// A launch's body and its pointer arguments (as the kernel receives them: checked to lie on the launching device).
struct emu_bound {
    std::function<void()> body;
    std::vector<const void *> ptrs;
};
void emu_launch(const void *fn, const char *name, dim3 grid, dim3 block, size_t smem, cudaStream_t s, emu_bound b);
cudaError_t emu_func_set_attribute(const void *fn, cudaFuncAttribute a, int v);
template <typename F> inline const void *emu_fn_key(F *f) { return (const void *)f; }
template <typename T> inline T emu_param(T v) { return v; }
template <typename T> inline void emu_note_ptr(std::vector<const void *> &v, const T &x) {
    if constexpr (std::is_pointer_v<T>) v.push_back((const void *)x);
}
template <typename... P, typename... A> inline emu_bound emu_bind(void (*k)(P...), A &&...a) {
    static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
    std::tuple<P...> t(emu_param<P>(std::forward<A>(a))...);
    std::vector<const void *> ptrs;
    std::apply([&](const P &...x) { (emu_note_ptr(ptrs, x), ...); }, t);
    return {[k, t]() { std::apply(k, t); }, std::move(ptrs)};
}
#define EMU_LAUNCH(fn, grid, block, smem, stream, ...)                                                            \
    emu_launch(emu_fn_key(fn), #fn, dim3(grid), dim3(block), (size_t)(smem), (cudaStream_t)(stream),             \
               emu_bind(fn __VA_OPT__(, ) __VA_ARGS__))
template <typename F> inline cudaError_t cudaFuncSetAttribute(F *fn, cudaFuncAttribute a, int v) {
    return emu_func_set_attribute((const void *)fn, a, v);
}
template <typename T> inline cudaError_t cudaMalloc(T **p, size_t n) { return cudaMalloc((void **)p, n); }
template <typename T> inline cudaError_t cudaMallocHost(T **p, size_t n) { return cudaMallocHost((void **)p, n); }
#endif
