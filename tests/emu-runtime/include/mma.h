// CPU stand-in: WMMA comes from tests/emu/cuda_emu.h through emu_device.h.
#pragma once
#include "cuda_runtime.h"
