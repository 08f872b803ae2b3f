// CPU stand-in: cp.async (see emu_device.h: copies land at the latest legal moment, NaN until then).
#pragma once
#include "cuda_runtime.h"
