// CPU stand-in for cuda_bf16.h: __nv_bfloat16 as its 16 bits (C test programs) or, in C++, the struct and
// conversions of tests/emu/cuda_emu.h (round to nearest even) plus the few emu_device.h adds.
#ifndef EMU_CUDA_BF16_H
#define EMU_CUDA_BF16_H
#include "cuda_runtime.h"
#ifndef __cplusplus
typedef struct __nv_bfloat16 {
    uint16_t bits;
} __nv_bfloat16;
#endif
#endif
