// CPU reference of the CoNeTTE log-mel front end (the oracle for kernels/logmel.cu).
#ifndef AC_REF_LOGMEL_H
#define AC_REF_LOGMEL_H

#include "ac.h"

// The precomputed form of fe's STFT and mel matrices that ac_logmel_ref uses (folded DFT halves, the entries
// where the float32 matrices break the symmetry, mel band ranges). Build once per model, after fe's matrices are
// set; ac_frontend_free frees fe->stft_plan.
ac_status ac_stft_plan_create(const ac_frontend *fe, ac_stft_plan **out);
void ac_stft_plan_free(ac_stft_plan *p);

// x: (n,) mono audio at fe->sample_rate, n >= ac_frontend_min_samples(fe).
// logmel: (T, n_mels) with T = ac_frontend_n_frames(fe, n); 10*log10(max(power_mel, amin)), no top_db.
ac_status ac_logmel_ref(const ac_frontend *fe, const float *x, int64_t n, float *logmel, int64_t T);

// bn0 (eval-mode BatchNorm2d over the mel axis), in place on (T, n_mels). Requires fe->bn0_* to be set.
ac_status ac_bn0_ref(const ac_frontend *fe, float *logmel, int64_t T);

#endif
