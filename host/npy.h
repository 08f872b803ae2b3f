// Minimal .npy (NumPy format 1.0) I/O for stage dumps (--dump-dir) and test goldens.
// Writes little-endian float32/int64 C-order arrays; reads float32/float64/int32/int64 into doubles.
#ifndef AC_NPY_H
#define AC_NPY_H

#include "ac.h"

#define AC_NPY_MAX_DIMS 8

typedef struct {
    double *data;  // every supported dtype (f4, f8, i4, i8) converted exactly to double
    int ndim;
    int64_t shape[AC_NPY_MAX_DIMS];
    int64_t size;
} ac_npy;

ac_status ac_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape);
ac_status ac_npy_write_i64(const char *path, const int64_t *data, int ndim, const int64_t *shape);
ac_status ac_npy_read(const char *path, ac_npy *out);
void ac_npy_free(ac_npy *a);

#endif
