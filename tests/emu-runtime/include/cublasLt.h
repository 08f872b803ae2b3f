// CPU stand-in: a cuBLASLt handle (created and destroyed; no matmul is emulated, none is used yet).
#ifndef EMU_CUBLASLT_H
#define EMU_CUBLASLT_H
#include "cublas_v2.h"
typedef struct emu_blaslt *cublasLtHandle_t;
#ifdef __cplusplus
extern "C" {
#endif
cublasStatus_t cublasLtCreate(cublasLtHandle_t *h);
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h);
#ifdef __cplusplus
}
#endif
#endif
