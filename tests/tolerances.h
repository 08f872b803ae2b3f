// Every numerical tolerance the tests use, in one place, each with where it comes from.
// Tests print each measured error as a share of its budget, so drift is visible long before it fails.
#ifndef AC_TOLERANCES_H
#define AC_TOLERANCES_H

// Resampler vs torchaudio.functional.resample: SNR floor in dB (issue #2). Evaluating the same float32
// kernel in float32 vs float64 is ~100 dB apart (ecosystem.md §6.4), so 90 dB leaves 10 dB for summation order
// and libm-vs-SLEEF sin/cos differences, while any algorithmic slip (other window, rolloff, width, padding or a
// one-sample shift) lands far below it (soxr-class resamplers: ~52 dB; linear: ~1 dB).
#define TOL_RESAMPLE_SNR_DB 90.0

// Log-mel vs the upstream torchlibrosa front end: max |diff| in dB (issue #2: 0.01 dB = 0.23 % in power where
// the reference is above -90 dB). A float32 STFT carries an absolute rounding error of roughly 2^-24 * sqrt(1024)
// times the frame's largest magnitudes, so a bin far below its frame's loudest bin is mostly rounding noise: the
// reference's own float32 output differs from the same modules run in float64 by up to 0.008 dB within 90 dB of
// the frame peak and up to 0.17 dB deeper (tools/make_goldens.py records it per file as reference_f32_error_db).
// So the 0.01 dB budget applies to bins above -90 dB and within TOL_LOGMEL_DYN_RANGE_DB of their frame's peak;
// every other bin must agree to TOL_LOGMEL_DEEP_DB (about 3x the reference's own deviation there).
#define TOL_LOGMEL_DB 0.01
#define TOL_LOGMEL_FLOOR_DB (-90.0)
#define TOL_LOGMEL_DYN_RANGE_DB 90.0
#define TOL_LOGMEL_DEEP_DB 0.5

// The CPU front end's folded STFT (ref_logmel.c) vs the plain windowed DFT, both summed in double: the same sum
// in another order, so they differ only by the float32 rounding of the log-mel output, here relative to
// max(1, |dB|): 2 ulp.
#define TOL_LOGMEL_FOLD_REL 1.2e-7

// Front-end constants we build vs those torchlibrosa/librosa build: float32 rounding of the same float64
// value can differ by one ulp when the float64 paths differ (np.power vs cos/sin of a reduced phase; numpy's
// linspace vs ours). Relative to the largest element of the matrix.
#define TOL_CONST_REL 2.4e-7  // 2 ulp at 1.0

// bn0 output: the log-mel budget scaled by |weight|/sqrt(var+eps) per bin, plus float32 rounding of the affine
// step at |x| <= ~100 (2^-17 ~ 7.6e-6).
#define TOL_BN0_ABS_EXTRA 2e-5

// Decoded samples vs torchaudio.load (same libsndfile decoder for WAV/FLAC through soundfile): head/tail
// samples bit-exact; sums, computed in double in another order, to 1e-9 relative.
#define TOL_DECODE_SUM_REL 1e-9

// Encoder/decoder stages vs the upstream model run by tools/make_fixtures.py (float32, TF32 off), as
// max |ours - ref| / max |ref| over the stage. Issue #4: frame embeddings to 1e-4 relative; the same budget for
// every later stage and for the teacher-forced logits. The log-mel and bn0 stages carry the front end's deep-bin
// rounding noise (up to ~0.2 dB on a ~100 dB scale, see above), hence their own budget.
#define TOL_STAGE_REL 1e-4
#define TOL_FRONTEND_STAGE_REL 3e-3
// Where the reference's own float32 result is further than that from its float64 evaluation (recorded per clip
// and stage by make_fixtures.py as reference_f32_rel_error: e.g. the full-size model on an 8 kHz clip, whose
// empty upper band leaves many log-mel bins at the rounding floor), the budget is that deviation times
// TOL_REF_FACTOR: two float32 evaluations that each sit within e of the exact value can differ by 2e.
#define TOL_REF_FACTOR 3.0
// Single ops vs double-precision versions (tests/test_ops.c): float32 sums of up to a few hundred terms
// (convs, linears, attention, LayerNorm) to 1e-5 of the output's scale; short ones (49-tap depthwise conv,
// GELU) to 1e-6. The erf inside GELU is a rational approximation measured at 4.2e-7 max abs error.
#define TOL_OP_REL 1e-5
#define TOL_OP_SHORT_REL 1e-6
#define TOL_ERF_ABS 4.5e-7

// Beam-search scores (average log-prob over up to 20 tokens, float32): absolute difference.
#define TOL_SCORE_ABS 1e-4

// ---- CUDA encoder (kernels/gpu_encoder.h and its kernels) vs the CPU oracle, as max |gpu - cpu| / max |cpu| ----
// FP32 single kernels (tests/test_cuda_encoder_ops.c): the same float32 sums in another order (warp trees, cuBLAS
// tiles) differ by a few ulp times sqrt(terms): ~1e-6 for K <= 4*768; 1e-5 is TOL_OP_REL, the CPU ops' own budget.
#define TOL_GPU_OP_REL 1e-5
// BF16-mode kernels with fp16 operands or outputs (the ConvNeXt MLP and its input h from dwconv7+LN,
// kernels/convnext_mlp_operand.cuh): each operand rounds by up to 2^-11 relative (2^-12 on average); a K-term dot
// product of random-sign terms then errs by ~2^-11 * |terms| / sqrt(K) of its own scale, ~4e-4 of the output's
// maximum. Measured on the CPU emulation of the kernels (emu_test_cuda_encoder_ops, 2026-11-28): 2.5e-4..4.2e-4
// for dwconv7+LN's fp16 output, 1.8e-4..5.6e-4 for the MLP branch. 1e-3; an output rounded to bf16 instead errs
// by up to 2^-9 (2e-3). (The BF16 mode's other GEMMs, the downsamples and the decoder's linears, multiply split
// bf16 pairs: TOL_GPU_LINEAR_SPLIT_REL.)
#define TOL_GPU_FP16_OP_REL 1e-3
// GPU log-mel vs ref_logmel.c (kernels/logmel.h), max |dB diff|. The DFT-GEMM method is the same double
// arithmetic in another order (~1e-12 relative in power): the front end's 0.01 dB budget holds in every bin,
// deep ones included. The FFT method uses exact twiddles times the float32 window where the reference uses the
// float32-rounded DFT matrix (2^-25 per entry): bins near the rounding floor differ, so it gets the reference's
// own rule: TOL_LOGMEL_DB within TOL_LOGMEL_DYN_RANGE_DB of the frame peak and above TOL_LOGMEL_FLOOR_DB,
// TOL_LOGMEL_DEEP_DB elsewhere. The FFT32 method (float32 frames, FFT, power and mel sums) is held to the same
// rule: it is the precision of the reference's own float32 STFT, whose deviation that rule was written for.
#define TOL_GPU_LOGMEL_DB TOL_LOGMEL_DB
// Whole encoder, FP32 mode (tests/test_cuda_encoder.c): frame embeddings and projection vs ac_model_encode. Issue #5
// asks for 1e-4 relative, the budget the CPU path meets against PyTorch (TOL_STAGE_REL); both are float32
// evaluations within ~1e-5 of exact on the fixtures, so 1e-4 leaves room for the GPU's different sum orders.
// The log-mel/bn0 stages carry the front end's deep-bin noise: TOL_FRONTEND_STAGE_REL as for the CPU.
#define TOL_GPU_ENC_FP32_REL 1e-4
// Whole encoder, BF16 mode: issue #5's budget for frame embeddings. Written for ~20 bf16 GEMM layers each adding
// ~3e-3 of their output scale (above), largely averaged out by LayerNorm and the frequency mean: 2e-2. With the
// MLPs' fp16 operands and split downsamples (kernels/gpu_encoder.h) bench/bf16_sim.py predicts ~1.6e-4 on the
// full-size random model (plain bf16 everywhere: 3.2e-3).
#define TOL_GPU_ENC_BF16_REL 2e-2
// A clip encoded inside a packed batch vs alone (FP32): no row ever sees another clip's data, but cuBLAS may pick
// other kernels (tile, split-K) for another M, so the sums can be reordered: float32 reordering noise only, which
// must stay below the GPU-vs-CPU difference (<= TOL_GPU_ENC_FP32_REL); half of that. A neighbour's rows leaking
// through a clip border changes the border tokens by O(1) of their scale, 10^4 times this.
#define TOL_GPU_BATCH_REL 5e-5

// ---- ConvNeXt block MLP on GPU (kernels/convnext_mlp*.cu vs a double-precision evaluation of the same fp16- or
// fp32-valued inputs, tests/test_cuda_convnext_mlp.c). Per output element x_c += gamma_c * y_c with
// y_c = b2_c + sum_j t_j, t_j = GELU(pre_j) * W2[c][j] over K = 4C hidden units; the budget is
//   |gamma_c| * E_c + 2^-23 * (|x0_c| + |gamma_c y_c|)          (the last: rounding of gamma*y and of the add)
// FP32 (CUDA-core fp32, TF32 off): E_c = TOL_MLP_FP32_EPS * 2^-24 * (|b2| + sum_j |t_j| + ||W2[c][j] * 1.13 *
// (|b1_j| + sum_k |h_k W1[j][k]|)||_2): float32 summation error of the two GEMMs, the first propagated through
// GELU (slope <= 1.13). The GELU's rational erf (kernels/gelu.cuh, |error| <= 4.2e-7) puts GELU_j off by at
// most 3.5 * 2^-24 |pre_j|, weighted by W2[c][j] of random signs: under half of the L2 term's 8 * 1.13 * 2^-24
// per unit (erff, before 2026-11-28, had 2 ulp). A K-term fp32 sum in the worst (sequential)
// order errs by about 0.4 * 2^-24 * sum |t| when the terms have random signs (random walk of K partial sums of
// size ~sqrt(i)); 8 is ~20x that. Dropping one hidden unit or one channel misses by ~|t_j|, ~800x the budget at
// K = 3072, so a wrong index fails loudly.
#define TOL_MLP_FP32_EPS 8.0
// BF16 mode (fp16 operands, kernels/convnext_mlp_operand.cuh; fp32 accumulation): h and the weights are fp16 on
// both sides, so the kernel's own error is rounding each GELU output to fp16 for GEMM2: relative error uniform
// within +-u, u = 2^-11 (fp16 unit roundoff; GELU outputs below fp16's normal range, |v| < 2^-14, err by at most
// 2^-25 absolute, far below this), so sum_j t_j delta_j has a standard deviation of u ||t||_2 / sqrt(3).
// E_c = TOL_MLP_OP_SIGMAS * u * ||t||_2 + the FP32 E_c, i.e. ~7 standard deviations: the max over the ~10^6
// elements a run checks stays below ~5.5 (Gaussian tail; a sum of uniforms has a lighter one). Dropping 16 of
// K = 3072 hidden units (one WMMA tile) misses by ~sqrt(16) * ||t||_2 / sqrt(K), 1 / (u * sqrt(K)) ~ 37x the
// budget; rounding the hidden values to bf16 instead of fp16 (8x u) fails it too.
#define TOL_MLP_OP_SIGMAS 4.0

// ---- GPU decoder and beam search (issue #6; kernels/attention_decode.cu, decoder_*.cu, beam_search.cu) ----------
// Decode attention vs ref_attend, as max |gpu - cpu| / max |cpu|: the same float32 dot products in the same
// 16-lane order and the same in-order weighted sum of values; they differ by CUDA's expf (<= 2 ulp vs glibc's
// <= 1) and the order of the double sum of exponentials, i.e. a few ulp of the output: 1e-5 (TOL_OP_REL, the
// budget of every float32 op against double) leaves a 10x margin.
#define TOL_GPU_ATTN_REL 1e-5
// Linear FP32 vs ref_linear_rows: one sequential fma chain over k against 16 interleaved partial sums: two
// float32 summation orders of K <= 2048 terms, each within ~sqrt(K) * 2^-24 of the exact sum relative to the
// terms' scale (~3e-6 at K = 2048): the op budget TOL_OP_REL.
#define TOL_GPU_LINEAR_REL TOL_OP_REL
// Linear BF16 (WMMA) vs ref_linear_rows on the same bf16-rounded operands: products are exact in fp32 on both;
// the tensor cores' fp32 accumulation may align addends by truncation (NVIDIA documents no rounding mode for the
// internal sum), worth up to ~K ulp in the worst case: 1e-4 (10x TOL_OP_REL).
#define TOL_GPU_LINEAR_BF16_REL 1e-4
// Linear, split product (x_lo W_hi + x_hi W_lo + x_hi W_hi on bf16 halves) vs ref_linear_rows on the unrounded
// FP32 operands: each product misses x_lo W_lo and the lo parts' own rounding, ~2^-16 (1.5e-5) of its scale, and
// those errors add over k as the terms do, so relative to the output they stay ~2^-16; plus the tensor cores'
// accumulation as for BF16 above: 1e-4 + 2e-5. Plain bf16 operands are ~2^-8 (4e-3) away: 30x this budget.
#define TOL_GPU_LINEAR_SPLIT_REL 1.2e-4
// Add + LayerNorm: double sums like the host, in another order; the affine step in float32 as the host writes
// it (up to fma contraction): a few ulp of the output.
#define TOL_GPU_LN_REL 1e-6
// Embedding * scale + position: one product and one sum per element, fused (nvcc contracts to fma) or rounded
// twice (the host): <= 1 ulp of the larger operand, i.e. up to 2^-22 of max |ref| when the element sits just
// under a power of two: 2 ulp at 1.0.
#define TOL_GPU_EMBED_REL 4.8e-7
// Captions, FP32 GPU vs the CPU path: tokens identical (beam decisions taken on logits that differ by the op
// budgets above can only change at exact or near ties); scores to TOL_SCORE_ABS.

#endif
