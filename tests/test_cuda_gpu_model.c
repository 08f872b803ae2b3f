// kernels/gpu_model.cu: every float tensor of the tiny fixture comes back from the device bit-identical to the
// host conversion; bf16 copies exist exactly for the >= 2-D tensors of a BF16 model and are within half a bf16
// ulp (2^-8 relative); the `gamma` / `scale_layer` names both resolve; absent names give NULL.
// Usage: test_cuda_gpu_model [MODEL]   (default: the converted tiny fixture). Exits 77 without a GPU.
#include "../kernels/device.h"
#include "../kernels/gpu_model.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    int ndev = 0;
    if (!ac_cuda_compiled() || ac_cuda_device_count(&ndev) != AC_OK || ndev == 0) {
        printf("test_cuda_gpu_model: no CUDA device: skipped\n");
        return AC_SKIP;
    }
    const char *path = argc > 1 ? argv[1] : AC_TEST_BIN "/fixture-tiny.safetensors";
    int checks = 0;
    for (int prec = 0; prec < 2; prec++) {
        ac_gpu_model *g = NULL;
        CHECK_OK(ac_gpu_model_load(path, 0, (ac_precision)prec, &g));
        checks++;
        if (!g) break;
        const ac_model_file *mf = ac_gpu_model_file(g);
        double worst_bf16 = 0;
        for (int i = 0; i < ac_model_file_n_tensors(mf); i++) {
            const ac_tensor *t;
            CHECK_OK(ac_model_file_tensor_at(mf, i, &t));
            if (t->dtype == AC_DTYPE_I64 || t->dtype == AC_DTYPE_BOOL) {
                CHECK(ac_gpu_f32(g, t->name) == NULL, "%s: integer tensor uploaded as float", t->name);
                continue;
            }
            float *want = malloc(sizeof(float) * (size_t)t->numel), *got = malloc(sizeof(float) * (size_t)t->numel);
            uint16_t *gb = malloc(sizeof(uint16_t) * (size_t)t->numel);
            CHECK_OK(ac_tensor_to_f32(t, want));
            const float *d = ac_gpu_f32(g, t->name);
            CHECK(d != NULL, "%s missing on device", t->name);
            if (d) {
                CHECK(cudaMemcpy(got, d, sizeof(float) * (size_t)t->numel, cudaMemcpyDeviceToHost) == cudaSuccess,
                      "copy %s", t->name);
                CHECK(!memcmp(got, want, sizeof(float) * (size_t)t->numel), "%s differs on device", t->name);
            }
            const void *b = ac_gpu_bf16(g, t->name);
            const int expect_b = prec == AC_PREC_BF16 && t->ndim >= 2 && !strncmp(t->name, "model.decoder.", 14);
            checks++;
            CHECK(ac_gpu_model_wants_bf16(prec, t) == expect_b, "%s: wants_bf16", t->name);
            CHECK((b != NULL) == expect_b, "%s: bf16 copy %s", t->name, b ? "present" : "absent");
            if (b && expect_b) {
                cudaMemcpy(gb, b, sizeof(uint16_t) * (size_t)t->numel, cudaMemcpyDeviceToHost);
                for (int64_t k = 0; k < t->numel; k++) {
                    uint32_t u = (uint32_t)gb[k] << 16;
                    float f;
                    memcpy(&f, &u, 4);
                    double e = fabs((double)f - want[k]) / fmax(fabs(want[k]), 1e-30);
                    if (want[k] != 0 && e > worst_bf16) worst_bf16 = e;
                }
            }
            checks += 3;
            free(want);
            free(got);
            free(gb);
        }
        if (prec == AC_PREC_BF16) {
            CHECK(report("bf16 copy max relative rounding", worst_bf16, 1.0 / 256, 0), "bf16 rounding");
        }
        // both names of the layer scale
        const float *a = ac_gpu_f32(g, "preprocessor.encoder.stages.0.0.scale_layer");
        const float *b = ac_gpu_f32(g, "preprocessor.encoder.stages.0.0.gamma");
        CHECK(a && a == b, "gamma alias: %p vs %p", (const void *)a, (const void *)b);
        CHECK(ac_gpu_f32(g, "no.such.tensor") == NULL, "absent name");
        int64_t nf = 0;
        CHECK(ac_gpu_host_forbid_mask(g, &nf) != NULL && nf == ac_gpu_model_config(g)->vocab_size,
              "forbid mask %lld", (long long)nf);
        CHECK(ac_gpu_stream(g) != NULL && ac_gpu_cublas(g) != NULL && ac_gpu_cublaslt(g) != NULL, "handles");
        checks += 4;
        ac_gpu_model_free(g);
    }
    ac_gpu_model *g = NULL;
    CHECK(ac_gpu_model_load("/nonexistent.safetensors", 0, AC_PREC_FP32, &g) != AC_OK && g == NULL, "bad path");
    checks++;
    return test_finish("test_cuda_gpu_model", checks);
}
