// CPU reference of the CoNeTTE log-mel front end (the oracle for kernels/log_mel.cu when it lands).
#ifndef AC_REF_LOGMEL_H
#define AC_REF_LOGMEL_H

#include "ac.h"

// x: (n,) mono audio at fe->sample_rate, n >= ac_frontend_min_samples(fe).
// logmel: (T, n_mels) with T = ac_frontend_n_frames(fe, n); 10*log10(max(power_mel, amin)), no top_db.
ac_status ac_logmel_ref(const ac_frontend *fe, const float *x, int64_t n, float *logmel, int64_t T);

// bn0 (eval-mode BatchNorm2d over the mel axis), in place on (T, n_mels). Requires fe->bn0_* to be set.
ac_status ac_bn0_ref(const ac_frontend *fe, float *logmel, int64_t T);

#endif
