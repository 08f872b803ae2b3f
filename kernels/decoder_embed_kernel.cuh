// The token embedding * scale + position kernel (one block per row); included by kernels/decoder_embed.cu (see
// there) and by tests/emu/decoder_ops_emu.cpp, which runs it on the CPU. Needs math.h (NAN) before it.
#pragma once

__global__ void decoder_embed_kernel(const int *tokens, int max_rows, const int *d_rows, const float *emb, int V,
                                     const float *pos, float scale, int D, float *x) {
    const int r = blockIdx.x;
    if (r >= (d_rows ? min(*d_rows, max_rows) : max_rows)) return;
    const int tok = tokens[r];
    float *xr = x + (size_t)r * D;
    if (tok < 0 || tok >= V) {
        for (int i = threadIdx.x; i < D; i += blockDim.x) xr[i] = NAN;
        return;
    }
    const float *e = emb + (size_t)tok * D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) xr[i] = e[i] * scale + pos[i];
}
