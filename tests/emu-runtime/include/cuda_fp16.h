// CPU stand-in for cuda_fp16.h: __half as its 16 bits (C test programs) or, in C++, the struct and conversions
// of tests/emu/cuda_emu.h (round to nearest even, as __float2half_rn).
#ifndef EMU_CUDA_FP16_H
#define EMU_CUDA_FP16_H
#include "cuda_runtime.h"
#ifndef __cplusplus
typedef struct __half {
    uint16_t bits;
} __half;
#endif
#endif
