// The KV cache gathered to follow its rows after a beam step (see kv_cache_gather.h): the in-place-reordering
// alternative to the decoder's cache indirection, for bench_gpu_kv_reorder. Layout per layer (steps, rows,
// width), as the decoder's cache (kernels/gpu_decoder.cu).
#include "common.cuh"
#include "kv_cache_gather.h"

#include <stdint.h>

#include "kv_cache_gather_kernel.cuh"

extern "C" ac_status ac_gpu_kv_cache_gather(const float *src, float *dst, int n_layers, int64_t layer_stride,
                                            int n_steps, int max_rows, int width, const int *src_row,
                                            const int *d_rows, cudaStream_t stream) {
    if (!src || !dst || !src_row || n_layers < 0 || n_steps < 0 || max_rows < 0 || width < 1 || n_layers > 65535 ||
        n_steps > 65535 || layer_stride < (int64_t)n_steps * max_rows * width)
        return ac_fail(AC_ERR_INVALID_ARG, "kv cache gather: %d layers of %lld floats, %d steps x %d rows x %d",
                       n_layers, (long long)layer_stride, n_steps, max_rows, width);
    if (n_layers == 0 || n_steps == 0 || max_rows == 0) return AC_OK;
    const int64_t span = (n_layers - 1) * layer_stride + (int64_t)n_steps * max_rows * width;
    if (src < dst + span && dst < src + span)
        return ac_fail(AC_ERR_INVALID_ARG, "kv cache gather: source and destination overlap (hint: gather into a "
                       "second buffer and swap)");
    const dim3 grid((unsigned)max_rows, (unsigned)n_steps, (unsigned)n_layers);
    const int vec = width % 4 == 0 && layer_stride % 4 == 0 && (uintptr_t)src % 16 == 0 && (uintptr_t)dst % 16 == 0;
    if (vec)
        kv_cache_gather_kernel<true><<<grid, 128, 0, stream>>>(src, dst, layer_stride, max_rows, width, src_row, d_rows);
    else
        kv_cache_gather_kernel<false><<<grid, 128, 0, stream>>>(src, dst, layer_stride, max_rows, width, src_row, d_rows);
    KERNEL_CHECK();
    return AC_OK;
}
