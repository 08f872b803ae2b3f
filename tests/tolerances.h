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
