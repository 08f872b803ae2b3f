// The decoder's linear kernels (FP32 tiles on CUDA cores, BF16 mma.sync tiles), optional erf GELU; included by
// kernels/decoder_linear.cu (see there for the tiling and the batch-invariance contract) and by
// tests/emu/decoder_ops_emu.cpp, which runs this same code on the CPU against host/ref/ref_ops.c.
// Needs stdint.h, string.h, gelu.cuh, cuda_pipeline.h, mma_16816.cuh and CUDA (cuda_bf16.h; or the emulator's
// stand-ins) before it.
#pragma once

#ifndef AC_DYNAMIC_SMEM
#define AC_DYNAMIC_SMEM(T, name) extern __shared__ __align__(128) T name[]
#endif

#define LIN_BM 64
#define LIN_BN 64
#define LIN_BK 16

__global__ void __launch_bounds__(256) linear_f32_kernel(const float *__restrict__ x, int M_max, const int *d_M, int K,
                                                         const float *__restrict__ W, const float *__restrict__ b,
                                                         int N, int gelu, float *__restrict__ y) {
    const int M = d_M ? min(*d_M, M_max) : M_max;
    const int m0 = blockIdx.y * LIN_BM, n0 = blockIdx.x * LIN_BN;
    if (m0 >= M) return;
    __shared__ float As[LIN_BK][LIN_BM + 4];
    __shared__ float Ws[LIN_BK][LIN_BN + 4];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
    for (int k0 = 0; k0 < K; k0 += LIN_BK) {
        // 64 x 16 elements of each operand, 4 per thread; consecutive threads read consecutive k
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int idx = tid + e * 256, r = idx >> 4, kk = idx & 15, k = k0 + kk;
            const int m = m0 + r, n = n0 + r;
            As[kk][r] = (m < M && k < K) ? x[(size_t)m * K + k] : 0.0f;
            Ws[kk][r] = (n < N && k < K) ? W[(size_t)n * K + k] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < LIN_BK; kk++) {
            float a[4], w[4];
#pragma unroll
            for (int i = 0; i < 4; i++) a[i] = As[kk][ty * 4 + i];
#pragma unroll
            for (int j = 0; j < 4; j++) w[j] = Ws[kk][tx * 4 + j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], w[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int m = m0 + ty * 4 + i;
        if (m >= M) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int n = n0 + tx * 4 + j;
            if (n >= N) continue;
            float v = acc[i][j] + (b ? b[n] : 0.0f);
            y[(size_t)m * N + n] = gelu ? ac_gelu_erf(v) : v;
        }
    }
}

// BF16 tiles on mma.sync (kernels/mma_16816.cuh): BM x BN outputs per 4 warps (2 x 2, each (BM/2) x (BN/2) in
// m16n8 tiles), 64 x 64, or 32 x 32 where the grid of 64 x 64 tiles would leave most SMs idle (the decoder's N = 256
// linears at M = 768: 48 blocks on 132 SMs; 192 with 32 x 32). K in slices of 32 through a 3-stage cp.async ring:
// at the decoder's shapes each slice is mostly load latency (linear2, K = 2048: 64 slices), which the ring overlaps
// where one load-sync-compute round per slice (this kernel's WMMA predecessor) exposed it every time.
// x stays fp32 in shared memory and each lane builds its A fragments from it, rounding (and splitting) as it goes:
// the fragment layout of mma.m16n8k16 puts two k-adjacent values in a register, one float2 read; W (hi, lo) comes
// through ldmatrix.
// Every output element goes through the same mma sequence over k whatever the tile (one m16n8k16 step per 16 k, in
// increasing order, zero-padded past K), so both tiles give bit-identical results, whatever the row count.
// SPLIT (W_lo given): three bf16 products per k step, x_lo W_hi + x_hi W_lo + x_hi W_hi (small terms first), the
// operands split as bf16_split2 does (W_lo = bf16(W - W_hi), made once by ac_gpu_bf16_split_lo): ~2^-16 relative per
// product instead of bf16's ~2^-8, on the same tensor cores and fp32 accumulators (the "3xTF32" scheme of CUTLASS
// with bf16 halves). The decoder takes it: its choices are discrete, and plain bf16 operands changed the caption of
// ~40 % of clips of a random full-size model in a simulation of our numerics (bench/RESULTS.md).
// A tile's shape: BM x BN outputs per block of WARPS_M x WARPS_N warps, each (BM / WARPS_M) x (BN / WARPS_N) in
// m16n8 tiles. The plain linears use 2 x 2 warps (lin_mma); the fused linear + LayerNorm one row block of 16
// across all 256 columns in 1 x 8 (lin_ln_cfg).
template <int BM_, int BN_, bool SPLIT_, int WARPS_M, int WARPS_N> struct lin_cfg {
    static constexpr int BM = BM_, BN = BN_;
    static constexpr bool SPLIT = SPLIT_;
    static constexpr int BK = 32, STAGES = 3, NTHREADS = 32 * WARPS_M * WARPS_N, WARPS_N_ = WARPS_N;
    static constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N;  // warp tile
    static constexpr int MT = WM / 16, NT = WN / 8;            // m16 and n8 tiles per warp
    static constexpr int LDX = BK + 8;  // floats: a lane's float2 reads of 4 rows (a half-warp) fall in 4 bank groups
    static constexpr int LDW = BK + 8;  // bf16: 80-byte rows, conflict-free ldmatrix phases
    static constexpr int X_BYTES = BM * LDX * 4, W_BYTES = BN * LDW * 2, NW = SPLIT ? 2 : 1;
    static constexpr int STAGE = X_BYTES + NW * W_BYTES, SMEM = STAGES * STAGE;
    static_assert(WM % 16 == 0 && WN % 16 == 0, "whole m16 tiles and n8 tiles in pairs per warp");
};
template <int BM, int BN, bool SPLIT> using lin_mma = lin_cfg<BM, BN, SPLIT, 2, 2>;

// x -> bf16 hi (round to nearest even) and lo = bf16(x - hi): hi + lo carries 16 of x's 24 significand bits. Two
// k-adjacent values at a time, as an mma fragment register holds them (the lower k in the lower half).
__device__ __forceinline__ void bf16_split2(float2 v, uint32_t *hi, uint32_t *lo) {
    *hi = ac_mma::pack_bf16x2(v.x, v.y);
    if (lo) {
        __nv_bfloat162 h;
        memcpy(&h, hi, sizeof h);
        *lo = ac_mma::pack_bf16x2(v.x - __bfloat162float(h.x), v.y - __bfloat162float(h.y));
    }
}

// K-slice kt of x rows [m0, m0 + BM) (fp32) and of W (and W_lo) rows [n0, n0 + BN) into a stage, zeros past M, N,
// K; rows are ld elements apart (ld = K, or the whole depth when x and W point into a split-K chunk). VEC (K and
// ld % 8 == 0, 16-byte aligned rows): 16-byte cp.async copies, a compile-time count per thread; else element by
// element, synchronously.
template <class C, bool VEC>
__device__ __forceinline__ void lin_load_stage(unsigned char *st, const float *__restrict__ x,
                                               const __nv_bfloat16 *__restrict__ W,
                                               const __nv_bfloat16 *__restrict__ W_lo, int M, int N, int K,
                                               int64_t ld, int m0, int n0, int kt) {
    constexpr int BM = C::BM, BN = C::BN;
    constexpr bool SPLIT = C::SPLIT;
    float *xs = (float *)st;
    __nv_bfloat16 *ws = (__nv_bfloat16 *)(st + C::X_BYTES), *wl = ws + BN * C::LDW;
    const int k0 = kt * C::BK;
    if (VEC) {
        constexpr int XQ = C::BK / 4, WQ = C::BK / 8;  // 16-byte pieces per row
        static_assert(BN * WQ % C::NTHREADS == 0, "whole rounds of W pieces");
        // x: whole rounds, or (16 rows x 8 pieces at 256 threads) one round that only some threads take
        constexpr int XR = CEIL_DIV(BM * XQ, C::NTHREADS);
#pragma unroll
        for (int i = 0; i < XR; i++) {
            const int e = threadIdx.x + i * C::NTHREADS, r = e / XQ, c = 4 * (e % XQ);
            if (BM * XQ % C::NTHREADS != 0 && e >= BM * XQ) break;
            float *d = xs + r * C::LDX + c;
            if (m0 + r < M && k0 + c < K)
                __pipeline_memcpy_async(d, x + (m0 + r) * ld + k0 + c, 16);
            else
                *(float4 *)d = make_float4(0.f, 0.f, 0.f, 0.f);
        }
#pragma unroll
        for (int i = 0; i < BN * WQ / C::NTHREADS; i++) {
            const int e = threadIdx.x + i * C::NTHREADS, r = e / WQ, c = 8 * (e % WQ);
            const int64_t o = (n0 + r) * ld + k0 + c;
            const bool in = n0 + r < N && k0 + c < K;
            if (in) __pipeline_memcpy_async(ws + r * C::LDW + c, W + o, 16);
            else *(uint4 *)(ws + r * C::LDW + c) = make_uint4(0u, 0u, 0u, 0u);
            if (SPLIT) {
                if (in) __pipeline_memcpy_async(wl + r * C::LDW + c, W_lo + o, 16);
                else *(uint4 *)(wl + r * C::LDW + c) = make_uint4(0u, 0u, 0u, 0u);
            }
        }
    } else {
        const __nv_bfloat16 zero = __float2bfloat16(0.0f);
        for (int e = threadIdx.x; e < BM * C::BK; e += C::NTHREADS) {
            const int r = e / C::BK, c = e % C::BK, m = m0 + r, k = k0 + c;
            xs[r * C::LDX + c] = m < M && k < K ? x[m * ld + k] : 0.0f;
        }
        for (int e = threadIdx.x; e < BN * C::BK; e += C::NTHREADS) {
            const int r = e / C::BK, c = e % C::BK, n = n0 + r, k = k0 + c;
            const bool in = n < N && k < K;
            ws[r * C::LDW + c] = in ? W[n * ld + k] : zero;
            if (SPLIT) wl[r * C::LDW + c] = in ? W_lo[n * ld + k] : zero;
        }
    }
}

// The k loop of a BF16 tile: acc (the warp's MT x NT m16n8 tiles) = x rows [m0, m0 + BM) . W rows [n0, n0 + BN)^T
// over k < K (rows ld apart), the warp's tile at (wm, wn) inside the block's. Every output element goes through
// one m16n8k16 step per 16 k in increasing order (three products in a fixed order with SPLIT), whatever the tile:
// the batch-invariance contract of decoder_linear.h.
template <class C, bool VEC>
__device__ __forceinline__ void lin_mainloop(unsigned char *smem, const float *__restrict__ x,
                                             const __nv_bfloat16 *__restrict__ W,
                                             const __nv_bfloat16 *__restrict__ W_lo, int M, int N, int K,
                                             int64_t ld, int m0, int n0, int wm, int wn,
                                             float (&acc)[C::MT][C::NT][4]) {
    constexpr bool SPLIT = C::SPLIT;
    const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int KT = CEIL_DIV(K, C::BK);

    lin_load_stage<C, VEC>(smem, x, W, W_lo, M, N, K, ld, m0, n0, 0);
    __pipeline_commit();
    if (KT > 1) lin_load_stage<C, VEC>(smem + C::STAGE, x, W, W_lo, M, N, K, ld, m0, n0, 1);
    __pipeline_commit();

    // a lane's A fragment reads: rows g and g + 8 of each m16 tile, k 2t and 2t + 8 (mma_16816.cuh); ldmatrix row
    // addresses of W's n8-tile pairs: row 8 (lane / 16) + lane % 8, k half (lane / 8) % 2
    const int x_off = (wm + g) * C::LDX + 2 * t;
    const int w_off = (wn + (lane / 16) * 8 + lane % 8) * C::LDW + ((lane / 8) % 2) * 8;

    ac_mma::zero_acc(acc);
    for (int kt = 0; kt < KT; kt++) {
        // groups committed: 0 .. kt + 1 (empty ones past the end): all but one landed means slice kt has; the
        // barrier publishes it (and the plain stores of zeros) and frees slice kt - 1's stage for kt + 2
        __pipeline_wait_prior(1);
        __syncthreads();
        if (kt + 2 < KT)
            lin_load_stage<C, VEC>(smem + ((kt + 2) % C::STAGES) * C::STAGE, x, W, W_lo, M, N, K, ld, m0, n0,
                                   kt + 2);
        __pipeline_commit();
        const unsigned char *st = smem + (kt % C::STAGES) * C::STAGE;
        const float *xs = (const float *)st + x_off;
        const __nv_bfloat16 *ws = (const __nv_bfloat16 *)(st + C::X_BYTES) + w_off;
#pragma unroll
        for (int kk = 0; kk < C::BK; kk += 16) {
            uint32_t ah[C::MT][4], al[C::MT][4];
#pragma unroll
            for (int m = 0; m < C::MT; m++)
#pragma unroll
                for (int r = 0; r < 4; r++)  // a[r]: row g + 8 (r % 2), k 2t + 8 (r / 2)
                    bf16_split2(*(const float2 *)(xs + (16 * m + 8 * (r % 2)) * C::LDX + kk + 8 * (r / 2)), &ah[m][r],
                                SPLIT ? &al[m][r] : nullptr);
#pragma unroll
            for (int np = 0; np < C::NT / 2; np++) {
                uint32_t bh[4], bl[4];
                ac_mma::ldmatrix_x4(bh, ws + np * 16 * C::LDW + kk);
                if (SPLIT) ac_mma::ldmatrix_x4(bl, ws + C::BN * C::LDW + np * 16 * C::LDW + kk);
#pragma unroll
                for (int m = 0; m < C::MT; m++)
#pragma unroll
                    for (int h = 0; h < 2; h++) {  // n8 tiles 2 np and 2 np + 1
                        float *d = acc[m][2 * np + h];
                        if (SPLIT) {  // the two small products first, into the same accumulators
                            ac_mma::mma_16816<__nv_bfloat16>(d, al[m], bh + 2 * h);
                            ac_mma::mma_16816<__nv_bfloat16>(d, ah[m], bl + 2 * h);
                        }
                        ac_mma::mma_16816<__nv_bfloat16>(d, ah[m], bh + 2 * h);
                    }
            }
        }
    }
    __pipeline_wait_prior(0);
}

// kchunk: K, or (split-K, blockIdx.z = chunk) the depth of each chunk, whose sums go to the plane y + z M_max N
// (b NULL and gelu 0 there: the partial sums alone)
template <int BM, int BN, bool SPLIT, bool VEC>
__global__ void __launch_bounds__(128) linear_bf16_kernel(const float *__restrict__ x, int M_max, const int *d_M, int K,
                                                          int kchunk, const __nv_bfloat16 *__restrict__ W,
                                                          const __nv_bfloat16 *__restrict__ W_lo,
                                                          const float *__restrict__ b, int N, int gelu,
                                                          float *__restrict__ y) {
    typedef lin_mma<BM, BN, SPLIT> C;
    AC_DYNAMIC_SMEM(unsigned char, smem);
    const int M = d_M ? min(*d_M, M_max) : M_max;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN, kb = blockIdx.z * kchunk;
    if (m0 >= M) return;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int wm = (warp / C::WARPS_N_) * C::WM, wn = (warp % C::WARPS_N_) * C::WN;
    float acc[C::MT][C::NT][4];
    lin_mainloop<C, VEC>(smem, x + kb, W + kb, SPLIT ? W_lo + kb : W_lo, M, N, min(kchunk, K - kb), K, m0, n0, wm,
                         wn, acc);
    y += (size_t)blockIdx.z * M_max * N;

    // epilogue from the accumulators: lane holds columns 2t, 2t + 1 of rows g and g + 8 of each m16n8 tile
#pragma unroll
    for (int nt = 0; nt < C::NT; nt++)
#pragma unroll
        for (int j = 0; j < 2; j++) {
            const int n = n0 + wn + 8 * nt + 2 * t + j;
            if (n >= N) continue;
            const float bn = b ? b[n] : 0.0f;
#pragma unroll
            for (int m = 0; m < C::MT; m++)
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const int r = m0 + wm + 16 * m + g + 8 * h;
                    if (r >= M) continue;
                    const float v = acc[m][nt][2 * h + j] + bn;
                    y[(size_t)r * N + n] = gelu ? ac_gelu_erf(v) : v;
                }
        }
}

// The post-LN sublayer's output projection with its residual LayerNorm in the epilogue (ac_gpu_linear_add_ln):
//   x (M, N) = LayerNorm(x + in (M, K) . W^T + b) * ln_w + ln_b,  N = LIN_LN_N
// One block per 16 rows across all N = 256 columns (8 warps, each 16 x 32), so a row's statistics never leave the
// block: one launch and one pass over x instead of a linear writing (M, N) and add_ln_kernel reading it back.
// The k loop is lin_mainloop's: the pre-LN sums v = x + acc + b are bit-identical to ac_gpu_linear's output
// added to x. The statistics as add_ln_kernel takes them (sums in double, two passes, (v - mean) * inv * w + b in
// float), but summed in another order (a lane's 8 columns, its quad, then the 8 warps in order), so a result may
// differ from the two-launch path in the last bit where a double sum rounds differently; each row still comes
// out the same whatever else is in the batch.
#define LIN_LN_N 256
template <bool SPLIT> using lin_ln_cfg = lin_cfg<16, LIN_LN_N, SPLIT, 1, 8>;

template <bool SPLIT, bool VEC>
__global__ void __launch_bounds__(256) linear_ln_kernel(const float *__restrict__ in, int M_max, const int *d_M, int K,
                                                        const __nv_bfloat16 *__restrict__ W,
                                                        const __nv_bfloat16 *__restrict__ W_lo,
                                                        const float *__restrict__ b, float *x,
                                                        const float *__restrict__ ln_w,
                                                        const float *__restrict__ ln_b, float eps) {
    typedef lin_ln_cfg<SPLIT> C;
    static_assert(C::MT == 1 && C::NT == 4 && C::NTHREADS == 256, "16 x 32 per warp");
    constexpr int N = LIN_LN_N, NWARP = C::NTHREADS / 32;
    AC_DYNAMIC_SMEM(unsigned char, smem);
    __shared__ double red[2][NWARP][16];  // per warp and row: the sums, then the squared deviations
    const int M = d_M ? min(*d_M, M_max) : M_max;
    const int m0 = blockIdx.x * C::BM;
    if (m0 >= M) return;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int wn = warp * C::WN;
    float acc[1][4][4];
    lin_mainloop<C, VEC>(smem, in, W, W_lo, M, N, K, K, m0, 0, 0, wn, acc);

    // v = x + acc + b for this lane's rows g (h = 0) and g + 8 (h = 1), columns wn + 8 nt + 2 t + j
    float v[2][4][2];
    double s[2] = {0, 0};
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int r = m0 + g + 8 * h;
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
            for (int j = 0; j < 2; j++) {
                const int n = wn + 8 * nt + 2 * t + j;
                const float o = acc[0][nt][2 * h + j] + b[n];
                v[h][nt][j] = r < M ? x[(size_t)r * N + n] + o : 0.0f;
                s[h] += v[h][nt][j];
            }
    }
    // a row's sum: the quad's 4 lanes (xor 1, 2), then the 8 warps in order, the same order in every lane
#pragma unroll
    for (int h = 0; h < 2; h++) {
        s[h] += __shfl_xor_sync(0xffffffffu, s[h], 1);
        s[h] += __shfl_xor_sync(0xffffffffu, s[h], 2);
        if (t == 0) red[0][warp][g + 8 * h] = s[h];
    }
    __syncthreads();
    double mean[2], q[2] = {0, 0};
#pragma unroll
    for (int h = 0; h < 2; h++) {
        double tot = 0;
#pragma unroll
        for (int w = 0; w < NWARP; w++) tot += red[0][w][g + 8 * h];
        mean[h] = tot / N;
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
            for (int j = 0; j < 2; j++) {
                const double d = v[h][nt][j] - mean[h];
                q[h] += d * d;
            }
        q[h] += __shfl_xor_sync(0xffffffffu, q[h], 1);
        q[h] += __shfl_xor_sync(0xffffffffu, q[h], 2);
        if (t == 0) red[1][warp][g + 8 * h] = q[h];
    }
    __syncthreads();
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int r = m0 + g + 8 * h;
        double tot = 0;
#pragma unroll
        for (int w = 0; w < NWARP; w++) tot += red[1][w][g + 8 * h];
        const float inv = (float)(1.0 / sqrt(tot / N + eps)), fm = (float)mean[h];
        if (r >= M) continue;
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
            for (int j = 0; j < 2; j++) {
                const int n = wn + 8 * nt + 2 * t + j;
                x[(size_t)r * N + n] = (v[h][nt][j] - fm) * inv * ln_w[n] + ln_b[n];
            }
    }
}

// linear2 (K = 2048) with its residual LayerNorm, in two launches that keep the chip busy at a batch's 768 rows:
// linear_bf16_kernel on a grid of (N, M, chunks) tiles, part[z] (M, N) = x[:, kz] . W[:, kz]^T over the z-th chunk
// of LIN_SPLITK_CHUNK k (no bias): 64 x 64 tiles with 4 chunks are 192 blocks where the unsplit grid has 48 (and the
// 32 x 32 tile issues twice the instructions per HMMA); then add_ln_kernel (kernels/decoder_add_ln_kernel.cuh,
// ac_gpu_add_layernorm_sum), x = LayerNorm(x + ((part[0] + part[1]) + ...) + b). The chunks depend on K alone and
// are summed in order, so every row's result is the same whatever the tile (64 or 32, same bits as ever) or the
// batch; it differs from the unsplit sum in the last bits only (the order of the partial sums).
#define LIN_SPLITK_CHUNK 512
