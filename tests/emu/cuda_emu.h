// Just enough of CUDA to run a kernel's own source on the CPU (tests/emu/convnext_mlp_emu.cpp): one host thread
// per CUDA thread, __syncthreads as a barrier, WMMA fragments as whole 16x16 tiles that lane 0 of each warp
// loads, multiplies and stores (the other lanes' copies are never stored), bf16 with round-to-nearest-even,
// and cp.async (cuda_pipeline.h) with the worst legal timing: the destination reads as NaN from the issue until
// the thread's __pipeline_wait_prior lets the group land. Asserts the alignment rules WMMA and cp.async state.
#pragma once
#define AC_CUDA_EMU 1  // kernels/mma_16816.cuh: emulate ldmatrix / mma.sync by warp exchanges instead of PTX
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../../host/bf16.h"
#include "../../host/fp16.h"

#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
#define __shared__
#define __align__(n)
#define __launch_bounds__(...)

struct emu_dim3 {
    unsigned x, y, z;
};
extern thread_local emu_dim3 threadIdx, blockIdx;
void __syncthreads();

struct alignas(16) uint4 {  // CUDA aligns it to 16 bytes; UBSan then reports a misaligned vector access
    unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }

struct __nv_bfloat16 {
    uint16_t bits;
};
inline float emu_bf2f(__nv_bfloat16 v) { return ac_bf16_to_f32(v.bits); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) {  // as CUDA: NaN stays a (quiet) NaN
    return {std::isnan(f) ? (uint16_t)0x7fc0 : ac_f32_to_bf16(f)};
}
struct alignas(4) __nv_bfloat162 {
    __nv_bfloat16 x, y;
};
inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
inline float __bfloat162float(__nv_bfloat16 v) { return emu_bf2f(v); }
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) { return {__float2bfloat16_rn(a), __float2bfloat16_rn(b)}; }
inline __nv_bfloat162 __halves2bfloat162(__nv_bfloat16 a, __nv_bfloat16 b) { return {a, b}; }
// fp16 as its bits, converted as CUDA's __float2half_rn does (round to nearest even, subnormals, inf past 65504)
struct __half {
    uint16_t bits;
};
inline float __half2float(__half v) { return ac_f16_to_f32(v.bits); }
inline __half __float2half_rn(float f) {
    if (std::fabs(f) >= 65520.0f) return {(uint16_t)(std::signbit(f) ? 0xfc00u : 0x7c00u)};  // ac_f32_to_f16 saturates
    return {ac_f32_to_f16(f)};
}
struct alignas(4) __half2 {
    __half x, y;
};
inline __half2 __floats2half2_rn(float a, float b) { return {__float2half_rn(a), __float2half_rn(b)}; }
inline float emu_to_f(float v) { return v; }
inline float emu_to_f(__nv_bfloat16 v) { return emu_bf2f(v); }
inline float emu_to_f(__half v) { return __half2float(v); }

// warp collective (tests/emu/emu_rt.h, tests/emu-runtime) for instructions that read other lanes' registers
// (kernels/mma_16816.cuh): publishes this lane's first `bytes` (<= 32) of mine; returns the warp's 32 slots (lane
// l's at offset 32 l) to the lane that arrives last, NULL to the others. That lane computes every lane's result
// through the pointers the lanes published, then every lane calls emu_warp_done: one barrier per instruction.
const unsigned char *emu_warp_arrive(const void *mine, unsigned bytes);
void emu_warp_done();

void __pipeline_memcpy_async(void *dst, const void *src, size_t bytes);
void __pipeline_commit();
void __pipeline_wait_prior(size_t prior);

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
    float v[16][16];
};
inline bool emu_lane0() { return threadIdx.x % 32 == 0; }
// Hook at the entry of every WMMA call (warp-collective: all 32 lanes must call it); emu_rt.h makes it a warp
// barrier, so a WMMA call under lane-divergent control flow fails there.
#ifndef EMU_WARP_CONVERGED
#define EMU_WARP_CONVERGED()
#endif
template <class U, class T, class L>
inline void fill_fragment(fragment<U, 16, 16, 16, T, L> &f, float x) {
    EMU_WARP_CONVERGED();
    for (auto &r : f.v)
        for (auto &e : r) e = x;
}
template <class U, class T, class L>
inline void load_matrix_sync(fragment<U, 16, 16, 16, T, L> &f, const T *p, unsigned ldm) {
    EMU_WARP_CONVERGED();
    assert((uintptr_t)p % 32 == 0 && "WMMA tile pointer must be 256-bit aligned");
    assert(ldm % (16 / sizeof(T)) == 0 && "WMMA ldm must be a multiple of 16 bytes");
    if (!emu_lane0()) return;
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            f.v[r][c] = std::is_same<L, row_major>::value ? emu_to_f(p[r * ldm + c]) : emu_to_f(p[c * ldm + r]);
}
inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ldm,
                              layout_t l) {
    EMU_WARP_CONVERGED();
    assert((uintptr_t)p % 32 == 0 && ldm % 4 == 0 && l == mem_row_major);
    if (!emu_lane0()) return;
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) p[r * ldm + c] = f.v[r][c];
}
template <class A, class B>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d, const A &a, const B &b,
                     const fragment<accumulator, 16, 16, 16, float> &c) {
    EMU_WARP_CONVERGED();
    if (!emu_lane0()) return;
    float out[16][16];
    for (int m = 0; m < 16; m++)
        for (int n = 0; n < 16; n++) {
            float s = c.v[m][n];
            for (int k = 0; k < 16; k++) s += a.v[m][k] * b.v[k][n];
            out[m][n] = s;
        }
    memcpy(d.v, out, sizeof out);
}
}  // namespace wmma
}  // namespace nvcuda
