// CPU stand-in for cuFFT: batched 1-D real-to-complex transforms, double (D2Z) or float (R2C: the butterflies in
// float, so the float path's rounding noise is there as on a GPU), radix-2 when the length is a power of two, a
// direct DFT otherwise; advanced layouts with unit strides only.
#ifndef EMU_CUFFT_H
#define EMU_CUFFT_H
#include "cuda_runtime.h"
#include "library_types.h"
typedef int cufftHandle;
typedef enum { CUFFT_SUCCESS = 0, CUFFT_INVALID_PLAN = 1, CUFFT_ALLOC_FAILED = 2, CUFFT_INVALID_VALUE = 4,
               CUFFT_EXEC_FAILED = 6, CUFFT_NOT_SUPPORTED = 16 } cufftResult;
typedef enum { CUFFT_R2C = 0x2a, CUFFT_D2Z = 0x6a } cufftType;
typedef struct { double x, y; } cufftDoubleComplex;
typedef double cufftDoubleReal;
typedef struct { float x, y; } cufftComplex;
typedef float cufftReal;
#ifdef __cplusplus
extern "C" {
#endif
cufftResult cufftPlanMany(cufftHandle *plan, int rank, int *n, int *inembed, int istride, int idist, int *onembed,
                          int ostride, int odist, cufftType type, int batch);
cufftResult cufftSetStream(cufftHandle plan, cudaStream_t s);
cufftResult cufftDestroy(cufftHandle plan);
cufftResult cufftExecD2Z(cufftHandle plan, cufftDoubleReal *in, cufftDoubleComplex *out);
cufftResult cufftExecR2C(cufftHandle plan, cufftReal *in, cufftComplex *out);
#ifdef __cplusplus
}
#endif
#endif
