// Device copy of a model file (see gpu_model.h). Every float tensor goes into one device allocation as float32,
// 256-byte aligned each (cuBLAS and vector loads like aligned operands); for AC_PREC_BF16 the decoder's >= 2-D
// tensors also go into a second allocation as bfloat16 (round to nearest even, NaN kept quiet), converted on the
// host so the bits do not depend on the device. Names are the model file's (host/model_file.h), which are the upstream
// checkpoint's after tools/convert.py.
#include "common.cuh"
#include "gpu_model.h"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <stdio.h>
#include <string.h>

namespace {
struct entry {
    const ac_tensor *t;
    size_t off32;  // byte offset in f32 blob
    size_t off16;  // byte offset in bf16 blob, or SIZE_MAX
};
}  // namespace

struct ac_gpu_model {
    ac_model_file *mf;
    const ac_model_config *cfg;
    ac_precision prec;
    int device;
    char device_name[256];
    cudaStream_t stream;
    cublasHandle_t blas;
    cublasLtHandle_t blaslt;
    entry *e;
    int n;
    char *d32, *d16;
    size_t bytes32, bytes16;
    uint8_t *forbid;
    int64_t n_forbid;
    void *state[AC_GPU_SLOTS];
    void (*state_free[AC_GPU_SLOTS])(void *);
};

static size_t align256(size_t x) { return (x + 255) & ~(size_t)255; }

static uint16_t f32_to_bf16_rne(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static int is_float(ac_dtype d) { return d == AC_DTYPE_F32 || d == AC_DTYPE_F16 || d == AC_DTYPE_BF16; }

extern "C" ac_status ac_gpu_model_use(const ac_gpu_model *g) {
    const cudaError_t e = cudaSetDevice(g->device);
    if (e != cudaSuccess)
        return ac_fail(AC_ERR_CUDA, "%s: cudaSetDevice(%d): %s (hint: check nvidia-smi and CUDA_VISIBLE_DEVICES)",
                       ac_model_file_name(g->mf), g->device, cudaGetErrorString(e));
    return AC_OK;
}

extern "C" void ac_gpu_model_free(ac_gpu_model *g) {
    if (!g) return;
    // the handles, stream and buffers belong to the model's device: destroy them with it current (nothing left to
    // report a failure to; the frees below are best effort)
    if (g->stream && cudaSetDevice(g->device) != cudaSuccess) (void)cudaGetLastError();
    for (int k = 0; k < AC_GPU_SLOTS; k++)
        if (g->state[k] && g->state_free[k]) g->state_free[k](g->state[k]);
    if (g->d32) cudaFree(g->d32);
    if (g->d16) cudaFree(g->d16);
    if (g->blas) cublasDestroy(g->blas);
    if (g->blaslt) cublasLtDestroy(g->blaslt);
    if (g->stream) cudaStreamDestroy(g->stream);
    free(g->e);
    free(g->forbid);
    ac_model_file_close(g->mf);
    free(g);
}

// The decoder's weight matrices get bf16 copies in BF16 mode; the encoder makes the operand copies it needs
// itself (fp16 pwconv weights, ac_convnext_mlp_weight; reordered bf16 pairs for the downsamples), so its tensors
// would only take device memory (~60 MB for CoNeTTE) and load time.
extern "C" int ac_gpu_model_wants_bf16(ac_precision prec, const ac_tensor *t) {
    return prec == AC_PREC_BF16 && t->ndim >= 2 && !strncmp(t->name, "model.decoder.", 14);
}

static ac_status upload(ac_gpu_model *g) {
    size_t max_numel = 1;
    for (int i = 0; i < g->n; i++) {
        const ac_tensor *t = g->e[i].t;
        g->e[i].off32 = g->e[i].off16 = SIZE_MAX;
        if (!is_float(t->dtype)) continue;
        g->e[i].off32 = g->bytes32;
        g->bytes32 += align256(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
        if (ac_gpu_model_wants_bf16(g->prec, t)) {
            g->e[i].off16 = g->bytes16;
            g->bytes16 += align256(sizeof(uint16_t) * (size_t)t->numel);
        }
        if ((size_t)t->numel > max_numel) max_numel = (size_t)t->numel;
    }
    CUDA_CHECK(cudaMalloc((void **)&g->d32, g->bytes32 ? g->bytes32 : 256));
    if (g->bytes16) CUDA_CHECK(cudaMalloc((void **)&g->d16, g->bytes16));
    float *h = (float *)malloc(sizeof(float) * max_numel);
    uint16_t *hb = (uint16_t *)malloc(sizeof(uint16_t) * max_numel);
    if (!h || !hb) {
        free(h);
        free(hb);
        return ac_fail(AC_ERR_NOMEM, "%s: host out of memory staging a %zu-element tensor", ac_model_file_name(g->mf),
                       max_numel);
    }
    ac_status st = AC_OK;
    cudaError_t err = cudaSuccess;
    for (int i = 0; i < g->n && !st && err == cudaSuccess; i++) {
        const ac_tensor *t = g->e[i].t;
        if (g->e[i].off32 == SIZE_MAX) continue;
        if ((st = ac_tensor_to_f32(t, h))) break;
        // synchronous copies: the staging buffers are reused right away
        err = cudaMemcpy(g->d32 + g->e[i].off32, h, sizeof(float) * (size_t)t->numel, cudaMemcpyHostToDevice);
        if (err == cudaSuccess && g->e[i].off16 != SIZE_MAX) {
            for (int64_t k = 0; k < t->numel; k++) hb[k] = f32_to_bf16_rne(h[k]);
            err = cudaMemcpy(g->d16 + g->e[i].off16, hb, sizeof(uint16_t) * (size_t)t->numel, cudaMemcpyHostToDevice);
        }
    }
    free(h);
    free(hb);
    if (st) return st;
    CUDA_CHECK(err);
    // a pageable cudaMemcpy may return before its DMA lands, and the model's stream is non-blocking (it does not
    // wait for the legacy stream): finish the uploads before any kernel reads them
    CUDA_CHECK(cudaDeviceSynchronize());
    return AC_OK;
}

static ac_status setup(ac_gpu_model *g, const char *path) {
    int n_dev = 0;
    cudaError_t e0 = cudaGetDeviceCount(&n_dev);
    if (e0 != cudaSuccess || g->device < 0 || g->device >= n_dev) {
        cudaGetLastError();
        return ac_fail(AC_ERR_CUDA, "%s: cuda:%d not available (%d device%s: %s) (hint: check nvidia-smi and "
                       "CUDA_VISIBLE_DEVICES)", path, g->device, n_dev, n_dev == 1 ? "" : "s", cudaGetErrorString(e0));
    }
    CUDA_CHECK(cudaSetDevice(g->device));
    cudaDeviceProp p;
    CUDA_CHECK(cudaGetDeviceProperties(&p, g->device));
    snprintf(g->device_name, sizeof g->device_name, "%s", p.name);
    CUDA_CHECK(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&g->blas));
    CUBLAS_CHECK(cublasSetStream(g->blas, g->stream));
    // FP32 is the validation mode: no TF32, no reduced-precision reductions, whatever the environment says
    CUBLAS_CHECK(cublasSetMathMode(g->blas, g->prec == AC_PREC_FP32 ? CUBLAS_PEDANTIC_MATH : CUBLAS_DEFAULT_MATH));
    CUBLAS_CHECK(cublasLtCreate(&g->blaslt));

    g->n = ac_model_file_n_tensors(g->mf);
    g->e = (entry *)calloc((size_t)(g->n ? g->n : 1), sizeof(entry));
    if (!g->e) return ac_fail(AC_ERR_NOMEM, "%s: host out of memory", path);
    for (int i = 0; i < g->n; i++) {
        ac_status st = ac_model_file_tensor_at(g->mf, i, &g->e[i].t);
        if (st) return st;
    }
    ac_status st = upload(g);
    if (st) return st;
    if (ac_model_file_has_tensor(g->mf, "model.forbid_rep_mask")) {
        const ac_tensor *t;
        if ((st = ac_model_file_tensor(g->mf, "model.forbid_rep_mask", &t))) return st;
        g->forbid = (uint8_t *)malloc((size_t)t->numel ? (size_t)t->numel : 1);
        if (!g->forbid) return ac_fail(AC_ERR_NOMEM, "%s: host out of memory", path);
        memcpy(g->forbid, t->data, (size_t)t->numel);
        g->n_forbid = t->numel;
    }
    return AC_OK;
}

extern "C" ac_status ac_gpu_model_load(const char *path, int device, ac_precision prec, ac_gpu_model **out) {
    *out = NULL;
    if (prec != AC_PREC_FP32 && prec != AC_PREC_BF16)
        return ac_fail(AC_ERR_INVALID_ARG, "%s: unknown precision %d (hint: fp32 or bf16)", path, (int)prec);
    ac_gpu_model *g = (ac_gpu_model *)calloc(1, sizeof *g);
    if (!g) return ac_fail(AC_ERR_NOMEM, "%s: out of memory", path);
    g->prec = prec;
    g->device = device;
    ac_status st = ac_model_file_open(path, &g->mf);
    if (!st) {
        g->cfg = ac_model_file_config(g->mf);
        st = setup(g, path);
    }
    if (st) {
        ac_gpu_model_free(g);
        return st;
    }
    *out = g;
    return AC_OK;
}

static const entry *find(const ac_gpu_model *g, const char *name) {
    for (int i = 0; i < g->n; i++)
        if (!strcmp(g->e[i].t->name, name)) return &g->e[i];
    // layer scale: `gamma` upstream before conette 0.3, `scale_layer` after (and in converted files)
    size_t nl = strlen(name);
    char alt[512];
    if (nl > 6 && nl < 400 && !strcmp(name + nl - 6, ".gamma"))
        snprintf(alt, sizeof alt, "%.*s.scale_layer", (int)(nl - 6), name);
    else if (nl > 12 && nl < 400 && !strcmp(name + nl - 12, ".scale_layer"))
        snprintf(alt, sizeof alt, "%.*s.gamma", (int)(nl - 12), name);
    else return NULL;
    for (int i = 0; i < g->n; i++)
        if (!strcmp(g->e[i].t->name, alt)) return &g->e[i];
    return NULL;
}

extern "C" const float *ac_gpu_f32(const ac_gpu_model *g, const char *name) {
    const entry *e = find(g, name);
    return e && e->off32 != SIZE_MAX ? (const float *)(g->d32 + e->off32) : NULL;
}

extern "C" const void *ac_gpu_bf16(const ac_gpu_model *g, const char *name) {
    const entry *e = find(g, name);
    return e && e->off16 != SIZE_MAX ? (const void *)(g->d16 + e->off16) : NULL;
}

extern "C" int64_t ac_gpu_numel(const ac_gpu_model *g, const char *name, int *ndim, int64_t *shape) {
    const entry *e = find(g, name);
    if (ndim) *ndim = e ? e->t->ndim : 0;
    if (shape && e)
        for (int k = 0; k < e->t->ndim; k++) shape[k] = e->t->shape[k];
    return e ? e->t->numel : 0;
}

extern "C" const ac_model_config *ac_gpu_model_config(const ac_gpu_model *g) { return g->cfg; }
extern "C" const ac_model_file *ac_gpu_model_file(const ac_gpu_model *g) { return g->mf; }
extern "C" ac_precision ac_gpu_model_precision(const ac_gpu_model *g) { return g->prec; }
extern "C" int ac_gpu_model_device(const ac_gpu_model *g) { return g->device; }
extern "C" const char *ac_gpu_model_device_name(const ac_gpu_model *g) { return g->device_name; }
extern "C" size_t ac_gpu_model_weight_bytes(const ac_gpu_model *g) { return g->bytes32 + g->bytes16; }
extern "C" cudaStream_t ac_gpu_stream(const ac_gpu_model *g) { return g->stream; }
extern "C" void *ac_gpu_cublas(const ac_gpu_model *g) { return (void *)g->blas; }
extern "C" void *ac_gpu_cublaslt(const ac_gpu_model *g) { return (void *)g->blaslt; }

extern "C" const uint8_t *ac_gpu_host_forbid_mask(const ac_gpu_model *g, int64_t *n) {
    if (n) *n = g->n_forbid;
    return g->forbid;
}

extern "C" void *ac_gpu_state(const ac_gpu_model *g, int key) {
    return key >= 0 && key < AC_GPU_SLOTS ? g->state[key] : NULL;
}

extern "C" ac_status ac_gpu_state_attach(ac_gpu_model *g, int key, void *state, void (*free_fn)(void *)) {
    if (key < 0 || key >= AC_GPU_SLOTS)
        return ac_fail(AC_ERR_INTERNAL, "gpu model: state key %d outside 0..%d", key, AC_GPU_SLOTS - 1);
    if (g->state[key] && g->state_free[key] && g->state[key] != state) g->state_free[key](g->state[key]);
    g->state[key] = state;
    g->state_free[key] = free_fn;
    return AC_OK;
}
