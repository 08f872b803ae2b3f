// Tensor-core fragments at the PTX level (sm_80+): ldmatrix.x4 and mma.sync.m16n8k16 with bf16 or fp16 operands
// and fp32 accumulators, the two instructions a FlashAttention-style kernel is built from
// (kernels/convnext_mlp_mma_kernel.cuh). Fragment layouts are those of the PTX ISA ("Matrix Fragments for
// mma.m16n8k16", "ldmatrix"), the same for both 16-bit types; with g = lane / 4 and t = lane % 4:
//   A (16 x 16, row-major)  a[0]: (g, 2t..2t+1)  a[1]: (g+8, 2t..2t+1)  a[2]: (g, 2t+8..2t+9)  a[3]: (g+8, 2t+8..2t+9)
//   B (16 x 8, k x n)       b[0]: (k 2t..2t+1, n g)  b[1]: (k 2t+8..2t+9, n g)
//   C/D (16 x 8, fp32)      d[0], d[1]: (g, 2t), (g, 2t+1)  d[2], d[3]: (g+8, 2t), (g+8, 2t+1)
// Two 16-bit values share a 32-bit register, the lower column in the lower half. So the accumulators of two
// adjacent n8 tiles, rounded to pairs, are exactly the A fragment of the next product (pack_a_from_acc): the
// hidden activations of the MLP go from GEMM1 to GEMM2 without touching shared memory.
// T (__nv_bfloat16 or __half) names the operand type of mma_16816 and pack2.
// Under the CPU emulators (AC_CUDA_EMU, tests/emu and tests/emu-runtime) the same layouts are computed from
// every lane's registers (one warp barrier per instruction), so a kernel that mixes them up fails there as it
// would on the GPU.
#pragma once

#include <stdint.h>

#include "convnext_mlp_operand.cuh"  // ac_mlp_op_saturate: pack_f16x2_sat's clamp off the device

namespace ac_mma {

__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (lo) in the lower 16 bits
    uint32_t r;
    memcpy(&r, &v, sizeof r);
    return r;
}

__device__ __forceinline__ uint32_t pack_f16x2(float lo, float hi) {
    const __half2 v = __floats2half2_rn(lo, hi);  // .x (lo) in the lower 16 bits; inf past 65504
    uint32_t r;
    memcpy(&r, &v, sizeof r);
    return r;
}

// As pack_f16x2, each value clamped to fp16's finite range (+-65504) where rounding would give inf; NaN stays NaN.
// On sm_80+ one cvt.rn.satfinite.f16x2.f32, a single F2FP.SATFINITE instruction where clamping each value first
// took three (cuobjdump, sm_90); the emulators clamp (ac_mlp_op_saturate), then round: the same bits, as
// (65504, 65520) rounds to 65504.
__device__ __forceinline__ uint32_t pack_f16x2_sat(float lo, float hi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    uint32_t r;
    asm("cvt.rn.satfinite.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));  // first source: upper half
    return r;
#else
    return pack_f16x2(ac_mlp_op_saturate(lo), ac_mlp_op_saturate(hi));
#endif
}

template <class T> __device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <> __device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) { return pack_bf16x2(lo, hi); }
template <> __device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) { return pack_f16x2(lo, hi); }
// saturating to T's finite range (bf16 has float's: nothing to clamp)
template <class T> __device__ __forceinline__ uint32_t pack2_sat(float lo, float hi);
template <> __device__ __forceinline__ uint32_t pack2_sat<__nv_bfloat16>(float lo, float hi) {
    return pack_bf16x2(lo, hi);
}
template <> __device__ __forceinline__ uint32_t pack2_sat<__half>(float lo, float hi) { return pack_f16x2_sat(lo, hi); }

// A fragment (16 x 16) of T from the fp32 accumulators of two n8 tiles that hold columns 0-7 and 8-15 of it
// (Sat: through pack2_sat)
template <class T, bool Sat = false>
__device__ __forceinline__ void pack_a_from_acc(uint32_t a[4], const float lo[4], const float hi[4]) {
    a[0] = Sat ? pack2_sat<T>(lo[0], lo[1]) : pack2<T>(lo[0], lo[1]);
    a[1] = Sat ? pack2_sat<T>(lo[2], lo[3]) : pack2<T>(lo[2], lo[3]);
    a[2] = Sat ? pack2_sat<T>(hi[0], hi[1]) : pack2<T>(hi[0], hi[1]);
    a[3] = Sat ? pack2_sat<T>(hi[2], hi[3]) : pack2<T>(hi[2], hi[3]);
}

// Zeroes an array of M x N fp32 accumulator tiles (16 x 8 each, 4 registers per lane); fully unrolled, so the
// array stays in registers.
template <int M, int N>
__device__ __forceinline__ void zero_acc(float (&acc)[M][N][4]) {
#pragma unroll
    for (int m = 0; m < M; m++)
#pragma unroll
        for (int n = 0; n < N; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) acc[m][n][i] = 0.f;
}

#ifndef AC_CUDA_EMU

// Four 8 x 8 bf16 matrices from shared memory: lane l gives the (16-byte aligned) address of row l % 8 of
// matrix l / 8; r[i] receives matrix i's elements (l / 4, 2 (l % 4) .. +1).
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void *smem_row) {
    const unsigned addr = (unsigned)__cvta_generic_to_shared(smem_row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

// d (16 x 8) += a (16 x 16) . b (16 x 8), T products accumulated in fp32
template <class T> __device__ __forceinline__ void mma_16816(float d[4], const uint32_t a[4], const uint32_t b[2]);
template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
template <>
__device__ __forceinline__ void mma_16816<__half>(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

#else  // CPU emulation: the documented layouts; the warp's last lane to arrive computes every lane's result from
      // all lanes' registers (all 32 lanes must call, as on the GPU)

// the lower / upper T of a register
template <class T> inline float emu_lo(uint32_t v) {
    T x;
    const uint16_t b = (uint16_t)(v & 0xffffu);
    memcpy(&x, &b, 2);
    return emu_to_f(x);
}
template <class T> inline float emu_hi(uint32_t v) { return emu_lo<T>(v >> 16); }

inline void ldmatrix_x4(uint32_t r[4], const void *smem_row) {
    assert((uintptr_t)smem_row % 16 == 0 && "ldmatrix: each row address must be 16-byte aligned");
    struct {
        const void *row;
        uint32_t *r;
    } mine = {smem_row, r};
    if (const unsigned char *slots = emu_warp_arrive(&mine, sizeof mine)) {  // the last lane loads for the warp
        decltype(mine) in[32];
        for (int l = 0; l < 32; l++) memcpy(&in[l], slots + 32 * l, sizeof mine);
        for (int l = 0; l < 32; l++)  // lane l: matrix i's row l / 4, its 4-byte column l % 4
            for (int i = 0; i < 4; i++) memcpy(&in[l].r[i], (const char *)in[8 * i + l / 4].row + 4 * (l % 4), 4);
    }
    emu_warp_done();
}

template <class T> inline void mma_16816(float d[4], const uint32_t a[4], const uint32_t b[2]) {
    struct {
        uint32_t a[4], b[2];
        float *d;
    } mine = {{a[0], a[1], a[2], a[3]}, {b[0], b[1]}, d};
    if (const unsigned char *slots = emu_warp_arrive(&mine, sizeof mine)) {  // the last lane computes for the warp
        decltype(mine) in[32];
        for (int l = 0; l < 32; l++) memcpy(&in[l], slots + 32 * l, sizeof mine);
        for (int l = 0; l < 32; l++) {
            const int g = l / 4, t = l % 4;
            float A[2][16], B[2][16];  // rows g, g + 8 of A; columns 2t, 2t + 1 of B; each over k = 0..15
            for (int q = 0; q < 4; q++) {  // lane 4g + q holds k = 2q, 2q+1 (a[0], a[1]) and 2q+8, 2q+9 (a[2], a[3])
                const uint32_t *x = in[4 * g + q].a;
                A[0][2 * q] = emu_lo<T>(x[0]), A[0][2 * q + 1] = emu_hi<T>(x[0]);
                A[1][2 * q] = emu_lo<T>(x[1]), A[1][2 * q + 1] = emu_hi<T>(x[1]);
                A[0][2 * q + 8] = emu_lo<T>(x[2]), A[0][2 * q + 9] = emu_hi<T>(x[2]);
                A[1][2 * q + 8] = emu_lo<T>(x[3]), A[1][2 * q + 9] = emu_hi<T>(x[3]);
            }
            for (int n = 0; n < 2; n++)  // column 2t + n of B lives in lanes 4 (2t + n) + q
                for (int q = 0; q < 4; q++) {
                    const uint32_t *x = in[4 * (2 * t + n) + q].b;
                    B[n][2 * q] = emu_lo<T>(x[0]), B[n][2 * q + 1] = emu_hi<T>(x[0]);
                    B[n][2 * q + 8] = emu_lo<T>(x[1]), B[n][2 * q + 9] = emu_hi<T>(x[1]);
                }
            for (int i = 0; i < 4; i++) {  // 16-bit products are exact; the tensor core's sum order is unspecified
                double s = in[l].d[i];
                for (int k = 0; k < 16; k++) s += (double)A[i / 2][k] * B[i % 2][k];
                in[l].d[i] = (float)s;
            }
        }
    }
    emu_warp_done();
}

#endif

}  // namespace ac_mma
