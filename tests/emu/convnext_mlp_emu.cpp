// CPU run of the fused ConvNeXt MLP kernel's own source (kernels/convnext_mlp_kernel.cuh) under the stand-ins
// of cuda_emu.h, for every tile configuration the launcher uses, on row counts with partial last tiles: checks
// the index arithmetic, the shared-memory layout (poisoned with NaN, with a canary past the configured size),
// the cp.async waits and the barriers (copies land as late as the waits allow, reading early gives NaN), against
// a double-precision evaluation with the same fp16 rounding of the hidden activations. Build with AddressSanitizer
// so that any global read past an array fails: tests/emu/run.sh. Not a GPU test: it says nothing about what
// nvcc makes of the code, only that the code is right if CUDA does what its documentation says.
#include "cuda_emu.h"

#include <pthread.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <thread>
#include <vector>

#include "mlp_case.h"

thread_local emu_dim3 threadIdx, blockIdx;
static pthread_barrier_t g_barrier;
void __syncthreads() { pthread_barrier_wait(&g_barrier); }

struct emu_copy {
    void *dst;
    const void *src;
};
static thread_local std::deque<std::vector<emu_copy>> t_groups;
static thread_local std::vector<emu_copy> t_open;
void __pipeline_memcpy_async(void *dst, const void *src, size_t bytes) {
    assert(bytes == 16 && (uintptr_t)dst % 16 == 0 && (uintptr_t)src % 16 == 0);
    unsigned char probe[16];
    memcpy(probe, src, 16);  // AddressSanitizer checks the source at issue
    for (int i = 0; i < 8; i++) ((uint16_t *)dst)[i] = 0x7fc0;  // NaN until the group lands
    t_open.push_back({dst, src});
}
void __pipeline_commit() {
    t_groups.push_back(t_open);
    t_open.clear();
}
void __pipeline_wait_prior(size_t prior) {
    while (t_groups.size() > prior) {
        for (const emu_copy &c : t_groups.front()) memcpy(c.dst, c.src, 16);
        t_groups.pop_front();
    }
}

#define EMU_SMEM (232 * 1024)
namespace ac_mlp_fused {
alignas(128) unsigned char smem[EMU_SMEM];  // the kernel's `extern __shared__` array; CTAs run one at a time
}

#include "../../kernels/convnext_mlp_kernel.cuh"

using namespace ac_mlp_fused;

static uint64_t g_rng = 99;

template <int C, int BM, int BH>
static int run(int64_t N) {
    typedef Cfg<C, BM, BH> K;
    static_assert(K::SMEM + 1024 <= EMU_SMEM, "emulated shared memory too small");
    const mlp_case p = mlp_make(C, N, &g_rng);
    std::vector<float> x = p.x0;
    int canary_bad = 0;
    pthread_barrier_init(&g_barrier, NULL, K::NTHREADS);
    for (int64_t b = 0; b < (N + BM - 1) / BM; b++) {
        for (size_t i = 0; i < EMU_SMEM / 2; i++) ((uint16_t *)smem)[i] = 0x7fc0;  // NaN as bf16, fp16 and fp32
        std::vector<std::thread> threads;
        for (int t = 0; t < K::NTHREADS; t++)
            threads.emplace_back([&, t] {
                threadIdx = {(unsigned)t, 0, 0};
                blockIdx = {(unsigned)b, 0, 0};
                convnext_mlp_wmma_kernel<C, BM, BH>(N, p.h.data(), p.w1.data(), p.b1.data(), p.w2.data(),
                                                    p.b2.data(), p.gamma.data(), x.data());
                assert(t_groups.empty() && t_open.empty() && "cp.async groups left pending at exit");
            });
        for (auto &t : threads) t.join();
        for (size_t i = K::SMEM / 2; i < EMU_SMEM / 2; i++) canary_bad += ((uint16_t *)smem)[i] != 0x7fc0;
    }
    pthread_barrier_destroy(&g_barrier);

    const double worst = mlp_worst(p, x.data());
    const int ok = worst < 1.0 && canary_bad == 0;
    printf("  C=%d BM=%d BH=%d N=%lld smem=%d: worst error %.3g of budget, %d shared bytes written past the "
           "configured size%s\n",
           C, BM, BH, (long long)N, K::SMEM, worst, 2 * canary_bad, ok ? "" : "  <-- FAIL");
    return !ok;
}

int main() {
    int fails = 0;
    // The launcher's four configurations (kernels/convnext_mlp.cu), each with full and partial row tiles.
    fails += run<96, 64, 32>(65);
    fails += run<96, 64, 32>(7);
    fails += run<192, 64, 32>(130);
    fails += run<384, 32, 32>(33);
    fails += run<768, 32, 16>(40);
    printf("convnext_mlp_emu: %d configurations failed\n", fails);
    return fails ? 1 : 0;
}
