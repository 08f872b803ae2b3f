// Stand-ins for kernels/device.cu in a CPU-only build (-DAC_CUDA=OFF): no devices.
#include "../kernels/device.h"
#include "status.h"

int ac_cuda_compiled(void) { return 0; }

ac_status ac_cuda_device_count(int *n) {
    *n = 0;
    return AC_OK;
}

ac_status ac_cuda_device_describe(int device, char *buf, size_t cap) {
    (void)buf;
    (void)cap;
    return ac_fail(AC_ERR_CUDA, "cuda:%d: this audiocap was built without CUDA (hint: rebuild with -DAC_CUDA=ON)",
                   device);
}

ac_status ac_cuda_selftest(int device) { return ac_cuda_device_describe(device, NULL, 0); }

// ---- the GPU engine (host/gpu_api.h) -------------------------------------------------------------------------
#include "gpu_api.h"

static ac_status no_cuda(void) {
    return ac_fail(AC_ERR_CUDA, "this audiocap was built without CUDA (hint: rebuild with -DAC_CUDA=ON, or use --device cpu)");
}

ac_status ac_gpu_model_load(const char *path, int device, ac_precision prec, ac_gpu_model **out) {
    (void)path;
    (void)device;
    (void)prec;
    *out = NULL;
    return no_cuda();
}

void ac_gpu_model_free(ac_gpu_model *g) { (void)g; }

const ac_model_config *ac_gpu_model_config(const ac_gpu_model *g) {
    (void)g;
    return NULL;
}

ac_status ac_gpu_caption_clips(ac_gpu_model *g, int n, const float *const *x, const int64_t *n_samples,
                               const ac_decode_params *p, ac_caption *out) {
    (void)g;
    (void)n;
    (void)x;
    (void)n_samples;
    (void)p;
    (void)out;
    return no_cuda();
}
