// The stand-in runtime's thread order (emu_runtime.cpp, reverse_threads): threads of a block run in index order in
// some blocks and in reverse order in others, so a read of another thread's shared-memory write with no barrier
// between them gives a wrong value in one of the two orders. Here thread t reads what thread t - 1 wrote: index
// order alone (the runtime before the alternation, EMU_THREAD_ORDER=forward) hides the missing __syncthreads,
// since t - 1 has always run first; the alternation catches it. With the barrier every block is right.
// Not a GPU test: it checks the tool the GPU test programs run on in CI.
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

#include "emu_check.h"

static __global__ void prev_kernel(const float *x, float *y, int sync) {
    float *s = (float *)emu_dyn_smem();  // what transform.py makes of `extern __shared__ float s[]`
    const int t = threadIdx.x, base = blockIdx.x * blockDim.x;
    s[t] = x[base + t];
    if (sync) __syncthreads();
    y[base + t] = t ? s[t - 1] : s[t];
}

int main(void) {
    enum { B = 4, T = 64 };
    float *x, *y, h[B * T], out[B * T];
    for (int i = 0; i < B * T; i++) h[i] = (float)i;
    if (cudaMalloc((void **)&x, sizeof h) || cudaMalloc((void **)&y, sizeof h) ||
        cudaMemcpy(x, h, sizeof h, cudaMemcpyHostToDevice)) {
        printf("emu_order_test: setup failed\n");
        return 1;
    }
    const bool forward_only = getenv("EMU_THREAD_ORDER") && !strcmp(getenv("EMU_THREAD_ORDER"), "forward");
    for (int sync = 0; sync < 2; sync++) {
        EMU_LAUNCH(prev_kernel, B, T, sizeof(float) * T, (cudaStream_t)0, x, y, sync);
        cudaMemcpy(out, y, sizeof out, cudaMemcpyDeviceToHost);
        int wrong_blocks = 0;
        for (int b = 0; b < B; b++) {
            int ok = 1;
            for (int t = 0; t < T; t++) ok &= out[b * T + t] == h[b * T + (t ? t - 1 : 0)];
            wrong_blocks += !ok;
        }
        if (sync)
            EXPECT(wrong_blocks == 0, "with __syncthreads: %d of %d blocks wrong", wrong_blocks, B);
        else if (forward_only)
            EXPECT(wrong_blocks == 0, "index order only: the missing barrier is hidden (%d blocks wrong)", wrong_blocks);
        else
            EXPECT(wrong_blocks == B / 2, "without __syncthreads: the reversed half of the blocks is wrong (%d of %d)",
                   wrong_blocks, B);
    }
    cudaFree(x);
    cudaFree(y);
    printf("emu_order_test: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
