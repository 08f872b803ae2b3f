// Types shared by the CUDA kernels' C-callable launchers and the host code that drives them.
#ifndef AC_GPU_TYPES_H
#define AC_GPU_TYPES_H

// Arithmetic of the GPU path. FP32: CUDA cores, TF32 off: the validation mode, checked against the CPU oracle
// at the fp32 budgets. BF16: tensor cores with bf16 operands and fp32 accumulation (weights stored bf16, the
// residual stream and every reduction fp32): the default on GPU.
typedef enum { AC_PREC_FP32 = 0, AC_PREC_BF16 = 1 } ac_precision;

#endif
