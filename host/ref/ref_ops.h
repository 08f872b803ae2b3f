// CPU reference ops of the CNext-trans model (ConvNeXt encoder + post-LN transformer decoder), float32.
// Each mirrors one PyTorch op the upstream model calls; the CUDA kernels will be tested against these.
// Activations are channels-last: x (T, F, C) for the encoder, (rows, D) for the decoder.
#ifndef AC_REF_OPS_H
#define AC_REF_OPS_H

#include <stddef.h>
#include <stdint.h>

// nn.Conv2d with kernel == stride (non-overlapping patches) and zero padding: the stem (4x4/4, padding (4, 0))
// and the 2x2/2 downsampling convs (conette convnext.py:207-217).
// x (T, F, Cin) -> y (T0, F0, Cout), T0 = (T + 2*pt - kt)/kt + 1; w (Cout, Cin, kt, kf) as stored, b (Cout).
void ref_conv2d_patch(const float *x, int T, int F, int Cin, const float *w, const float *b, int Cout, int kt, int kf,
                      int pt, int pf, float *y, int *T0, int *F0);
int ref_conv2d_patch_out(int n, int k, int pad);  // output size along one axis

// Depthwise nn.Conv2d(C, C, 7, padding=3, groups=C) with bias (ConvNeXtBlock.dwconv, convnext.py:22-74).
// x (T, F, C) -> y (T, F, C); w (C, 1, 7, 7) as stored.
void ref_dwconv7(const float *x, int T, int F, int C, const float *w, const float *b, float *y);

// LayerNorm over the last axis of (rows, C), biased variance, in place: the channels_first LayerNorm of
// conette norm.py:35-40 and F.layer_norm are the same computation on channels-last data.
void ref_layernorm(float *x, int64_t rows, int C, const float *w, const float *b, float eps);

// y (M, N) = x (M, K) . W^T + b with W (N, K) as nn.Linear stores it. Encoder path: OpenBLAS sgemm.
void ref_linear(const float *x, int64_t M, int K, const float *W, const float *b, int N, float *y);
// The same with a summation order fixed per output element, whatever M is: decoder rows give bit-identical
// results whether a clip is decoded alone or with others (batch invariance of beam decisions).
void ref_linear_rows(const float *x, int64_t M, int K, const float *W, const float *b, int N, float *y);

void ref_gelu_erf(float *x, int64_t n);  // nn.GELU() / F.gelu, erf form: 0.5 x (1 + erf(x / sqrt(2)))
float ref_erf(float x);                  // the erf it uses (rational, |error| <= 4.2e-7)
void ref_relu(float *x, int64_t n);

// A ConvNeXt block after its dwconv (convnext.py:62-73): LayerNorm, Linear C->4C, GELU, Linear 4C->C, layer scale
// gamma, residual. t (P, C) holds the dwconv output and is overwritten; x (P, C) += gamma * mlp(LN(t)). Rows go in
// chunks of `rows` (rows == P: one pass over the whole tensor), so that a chunk's hidden activations can stay in
// cache; h holds ref_convnext_mlp_scratch(P, C, rows) floats (a chunk's hidden activations per OpenMP thread).
// A row's result does not depend on the chunking.
void ref_convnext_mlp(float *x, float *t, int64_t P, int C, const float *ln_w, const float *ln_b, float eps,
                      const float *pw1_w, const float *pw1_b, const float *pw2_w, const float *pw2_b,
                      const float *gamma, int64_t rows, float *h);
// The engine's rows per chunk for a stage of P rows and C channels: a function of the shape only, never of the
// threads, so that a clip's numbers do not depend on them.
int64_t ref_convnext_mlp_chunk_rows(int64_t P, int C);
// Floats of h that ref_convnext_mlp needs for these chunks, with the calling thread's OpenMP thread count.
size_t ref_convnext_mlp_scratch(int64_t P, int C, int64_t rows);

// Scaled dot-product attention of `rows` queries over L keys/values for one head group layout:
// q (D) per row, k/v (L, D) with heads of size hd = D / nhead side by side; keys at index >= valid are masked.
// out (D). Matches softmax(q k^T / sqrt(hd)) v of nn.MultiheadAttention (eval, no dropout).
void ref_attend(const float *q, const float *k, const float *v, int L, int valid, int D, int nhead, float *out);

#endif
