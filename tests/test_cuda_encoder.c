// The whole CUDA encoder (kernels/gpu_encoder.h) against the CPU oracle ac_model_encode, stage by stage, on the
// test clips (tests/data/audio at the model rate) plus synthetic ones at the length limits, all encoded in ONE
// packed batch of mixed lengths:
//   FP32: every stage within TOL_GPU_ENC_FP32_REL (log-mel / bn0: TOL_FRONTEND_STAGE_REL) of the CPU, per clip;
//         n_frames / mem_len / per-clip status identical; the returned memory matrix = the CPU's projection;
//         each clip encoded alone = the same clip inside the batch (TOL_GPU_BATCH_REL);
//         int16 PCM = the same samples as float (x / 32768 is exact); the clips encoded back to back with no
//         synchronisation between the calls = each alone, bit for bit (the uploads' copy stream and slots);
//         the batch from PCM already on the device (ac_gpu_encode_resident) = the host path, bit for bit.
//   BF16: frame embeddings and projection within TOL_GPU_ENC_BF16_REL; a checkpoint with a pwconv weight beyond
//         fp16's range (the BF16 MLPs' operands) refused at load, naming the tensor, and taken by FP32; the
//         operands' load-time bound (ac_gpu_encoder_fp16_bound) within range for the fixture, and naming the
//         block whose LayerNorm weight was set to 1e5.
// The encoder's buffers are NaN-poisoned before every call (AC_ENC_POISON=1).
// Usage: test_cuda_encoder [MODEL [AUDIO_DIR]]. Without arguments: the tiny fixture, then the full-size one when
// the build has converted it (build/tests/fixture-full.safetensors, test_model_fixture_full). Exits 77 without GPU.
// AC_TEST_PRECISION=fp32|bf16 checks one precision only (the emulated full-size run takes hours per precision).
#include "../kernels/device.h"
#include "../kernels/gpu_encoder.h"
#include "../kernels/gpu_model.h"
#include "model.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NS 9
static const char *const STAGES[NS] = {"logmel", "bn0",    "stem",       "stage0",    "stage1",
                                       "stage2", "stage3", "frame_embs", "projection"};
typedef struct {
    float *data[NS];
    int64_t numel[NS];
} stages;

static int checks;

static int stage_index(const char *name) {
    for (int i = 0; i < NS; i++)
        if (!strcmp(STAGES[i], name)) return i;
    return -1;
}

static void keep(stages *s, const char *stage, const float *data, int ndim, const int64_t *shape) {
    int i = stage_index(stage);
    if (i < 0) return;
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    free(s->data[i]);
    s->data[i] = malloc(sizeof(float) * (size_t)(n ? n : 1));
    memcpy(s->data[i], data, sizeof(float) * (size_t)n);
    s->numel[i] = n;
}
static void cpu_dump(void *ctx, const char *stage, const float *data, int ndim, const int64_t *shape) {
    keep((stages *)ctx, stage, data, ndim, shape);
}
static void gpu_dump(void *ctx, int clip, const char *stage, const float *data, int ndim, const int64_t *shape) {
    keep((stages *)ctx + clip, stage, data, ndim, shape);
}
static void stages_free(stages *s) {
    for (int i = 0; i < NS; i++) free(s->data[i]);
    memset(s, 0, sizeof *s);
}

static double rel_err(const float *ref, const float *got, int64_t n) {
    double md = 0, mr = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(got[i]) || isinf(got[i])) return INFINITY;
        md = fmax(md, fabs((double)got[i] - ref[i]));
        mr = fmax(mr, fabs(ref[i]));
    }
    return mr > 0 ? md / mr : md > 0 ? INFINITY : 0;
}

static void expect(const char *label, double err, double budget) {
    CHECK(report(label, err, budget, 0), "%s: %.3g > %.3g", label, err, budget);
    checks++;
}

// Host copy of the packed memory rows of clip i.
static float *mem_rows(const float *mem, int64_t off, int nf, int D) {
    float *h = malloc(sizeof(float) * (size_t)(nf ? nf : 1) * D);
    if (nf && cudaMemcpy(h, mem + off * D, sizeof(float) * (size_t)nf * D, cudaMemcpyDeviceToHost) != cudaSuccess) {
        fprintf(stderr, "FAIL: copying memory rows\n");
        exit(1);
    }
    return h;
}

// 1 when the device rows of every clip that encoded (st[i] == AC_OK) equal want[i] bit for bit
static int same_rows(float *const *want, const float *mem, const int64_t *off, const int *nf, const ac_status *st,
                     int n, int D) {
    int same = 1;
    for (int i = 0; i < n; i++) {
        if (st[i]) continue;
        float *h = mem_rows(mem, off[i], nf[i], D);
        same &= memcmp(want[i], h, sizeof(float) * (size_t)nf[i] * D) == 0;
        free(h);
    }
    return same;
}

static void run_model(const char *path, const char *audio_dir) {
    printf("model %s\n", path);
    ac_model *m = NULL;
    CHECK_OK(ac_model_load(path, &m));
    checks++;
    if (!m) return;
    const ac_model_config *c = ac_model_config_of(m);
    const int D = c->decoder.d_model;
    // clips: the test audio, then synthetic ones at the limits (min, min - 1: too short, odd lengths)
    static const char *const files[] = {"chirp_44k1_stereo_s24.flac", "clipped_8k_mono.wav", "example.flac",
                                        "noise_44k1_mono_f64.wav", "short_32k_mono.wav", "silence_32k_mono.wav",
                                        "speech_16k_mono.wav", "tiny_32k_mono.wav", "tones_22k05_mono_u8.wav"};
    enum { NF = sizeof files / sizeof files[0], N = NF + 4 };
    float *x[N];
    int64_t ns[N];
    for (int i = 0; i < NF; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", audio_dir, files[i]);
        ac_audio a;
        CHECK_OK(ac_audio_load(p, &a, NULL));
        CHECK_OK(ac_audio_to_model_rate(&a, c->frontend.sample_rate, &x[i], &ns[i]));
        ac_audio_free(&a);
    }
    const int64_t mn = ac_model_min_samples(m);
    const int64_t syn[4] = {mn, mn - 1, 3 * mn + 101, (int64_t)c->frontend.sample_rate * 3 + 7};
    uint64_t r = 12345;
    for (int k = 0; k < 4; k++) {
        ns[NF + k] = syn[k];
        x[NF + k] = malloc(sizeof(float) * (size_t)syn[k]);
        for (int64_t i = 0; i < syn[k]; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            x[NF + k][i] = (float)((double)(r >> 11) / 9007199254740992.0 - 0.5) * 0.6f;
        }
    }
    // CPU oracle, clip by clip
    stages cpu[N];
    memset(cpu, 0, sizeof cpu);
    ac_status cst[N];
    int cnf[N], cml[N];
    for (int i = 0; i < N; i++) {
        float *mem = NULL;
        cnf[i] = cml[i] = 0;
        cst[i] = ac_model_encode(m, x[i], ns[i], cpu_dump, &cpu[i], &mem, &cnf[i], &cml[i]);
        free(mem);
    }
    CHECK(cst[NF + 1] == AC_ERR_AUDIO, "min - 1 samples accepted by the CPU");

    const char *only = getenv("AC_TEST_PRECISION");
    for (int prec = 0; prec < 2; prec++) {
        if (only && strcmp(only, prec ? "bf16" : "fp32") != 0) continue;
        ac_gpu_model *g = NULL;
        CHECK_OK(ac_gpu_model_load(path, 0, (ac_precision)prec, &g));
        checks++;
        if (!g) continue;
        CHECK(ac_gpu_encoder_min_samples(g) == mn, "min samples");
        stages gpu[N];
        memset(gpu, 0, sizeof gpu);
        const float *mem = NULL;
        int64_t off[N];
        int nf[N], ml[N];
        ac_status st[N];
        CHECK_OK(ac_gpu_encode_ex(g, N, AC_PCM_F32, (const void *const *)x, ns, gpu_dump, gpu, &mem, off, nf, ml, st));
        cudaStreamSynchronize(ac_gpu_stream(g));
        printf("  %s, %s MLP, batch of %d clips\n", prec ? "BF16" : "FP32",
               ac_gpu_encoder_mlp_paths(g), N);
        double worst[NS] = {0}, wmem = 0;
        for (int i = 0; i < N; i++) {
            CHECK(st[i] == cst[i] && nf[i] == cnf[i] && ml[i] == cml[i],
                  "clip %d: status %d/%d, frames %d/%d, len %d/%d (gpu/cpu)", i, st[i], cst[i], nf[i], cnf[i], ml[i],
                  cml[i]);
            checks++;
            if (cst[i]) continue;
            for (int s = 0; s < NS; s++) {
                CHECK(gpu[i].numel[s] == cpu[i].numel[s], "clip %d %s: %lld vs %lld elements", i, STAGES[s],
                      (long long)gpu[i].numel[s], (long long)cpu[i].numel[s]);
                if (gpu[i].numel[s] == cpu[i].numel[s])
                    worst[s] = fmax(worst[s], rel_err(cpu[i].data[s], gpu[i].data[s], cpu[i].numel[s]));
                else worst[s] = INFINITY;
            }
            // the returned matrix is the projection, (T', D) rows
            float *h = mem_rows(mem, off[i], nf[i], D), *ref = cpu[i].data[8];
            float *tr = malloc(sizeof(float) * (size_t)nf[i] * D);
            for (int t = 0; t < nf[i]; t++)
                for (int d = 0; d < D; d++) tr[(size_t)t * D + d] = ref[(size_t)d * nf[i] + t];
            wmem = fmax(wmem, rel_err(tr, h, (int64_t)nf[i] * D));
            free(h);
            free(tr);
        }
        for (int s = 0; s < NS; s++) {
            char l[96];
            snprintf(l, sizeof l, "%s %s vs CPU (worst clip)", prec ? "bf16" : "fp32", STAGES[s]);
            double b = prec ? TOL_GPU_ENC_BF16_REL : s < 2 ? TOL_FRONTEND_STAGE_REL : TOL_GPU_ENC_FP32_REL;
            if (prec && s < 7 && s >= 2) {  // bf16 intermediate stages: printed for the record, not judged
                report(l, worst[s], b, 0);
                continue;
            }
            expect(l, worst[s], b);
        }
        expect(prec ? "bf16 memory matrix vs CPU projection" : "fp32 memory matrix vs CPU projection", wmem,
               prec ? TOL_GPU_ENC_BF16_REL : TOL_GPU_ENC_FP32_REL);

        if (prec == AC_PREC_FP32) {
            // each clip alone = the same clip in the batch
            float *batch[N];
            for (int i = 0; i < N; i++) batch[i] = st[i] ? NULL : mem_rows(mem, off[i], nf[i], D);
            double wb = 0;
            float *alone[N];
            for (int i = 0; i < N; i++) {
                alone[i] = NULL;
                if (st[i]) continue;
                const float *m1;
                int64_t o1;
                int n1, l1;
                ac_status s1;
                const float *x1[1] = {x[i]};
                CHECK_OK(ac_gpu_encode(g, 1, x1, &ns[i], &m1, &o1, &n1, &l1, &s1));
                cudaStreamSynchronize(ac_gpu_stream(g));
                CHECK(s1 == AC_OK && o1 == 0 && n1 == nf[i] && l1 == ml[i], "clip %d alone: status %d frames %d", i,
                      s1, n1);
                alone[i] = mem_rows(m1, 0, n1, D);
                wb = fmax(wb, rel_err(batch[i], alone[i], (int64_t)n1 * D));
            }
            expect("fp32 clip alone vs in the batch", wb, TOL_GPU_BATCH_REL);
            // The same calls back to back, each clip's rows read back on the model's stream and one synchronisation
            // at the end. Uploads run on the encoder's copy stream into two alternating slots: an upload that
            // overwrote a slot the previous call's kernels still read, or kernels that started before their upload,
            // would give another clip's frames (or the NaN of fresh memory) here. The emulated runtime runs each
            // queued copy as late as CUDA allows, so there such a race fails every time.
            {
                cudaStream_t gs = ac_gpu_stream(g);
                float *pin[N];
                int pnf[N], same = 1;
                ac_status ps[N];
                for (int i = 0; i < N; i++) {
                    pin[i] = NULL;
                    if (!st[i]) CHECK(cudaMallocHost((void **)&pin[i], sizeof(float) * (size_t)nf[i] * D) == cudaSuccess,
                                      "pinned buffer");
                }
                for (int i = 0; i < N; i++) {
                    const float *m1;
                    int64_t o1;
                    int l1;
                    const float *x1[1] = {x[i]};
                    CHECK_OK(ac_gpu_encode(g, 1, x1, &ns[i], &m1, &o1, &pnf[i], &l1, &ps[i]));
                    same &= ps[i] == st[i] && (ps[i] || pnf[i] == nf[i]);
                    if (!ps[i] && pin[i] && pnf[i] == nf[i])
                        CHECK(cudaMemcpyAsync(pin[i], m1 + o1 * D, sizeof(float) * (size_t)nf[i] * D,
                                              cudaMemcpyDeviceToHost, gs) == cudaSuccess, "rows back");
                }
                CHECK(cudaStreamSynchronize(gs) == cudaSuccess, "synchronise");
                for (int i = 0; i < N; i++) {
                    if (pin[i] && alone[i]) same &= memcmp(pin[i], alone[i], sizeof(float) * (size_t)nf[i] * D) == 0;
                    if (pin[i]) cudaFreeHost(pin[i]);
                }
                CHECK(same, "%d clips encoded back to back without synchronising = each encoded alone, bit for bit", N);
                checks++;
            }
            // PCM already on the device (ac_gpu_encode_resident): the batch packed back to back, the too-short
            // clip's samples included, gives the host path's statuses, offsets and frames bit for bit; a host
            // pointer is refused
            {
                int64_t tot = 0;
                for (int i = 0; i < N; i++) tot += ns[i];
                float *hp = malloc(sizeof(float) * (size_t)tot);
                void *dp = NULL;
                CHECK(hp && cudaMalloc(&dp, sizeof(float) * (size_t)tot) == cudaSuccess, "resident PCM buffers");
                for (int i = 0, o = 0; i < N; o += (int)ns[i], i++) memcpy(hp + o, x[i], sizeof(float) * (size_t)ns[i]);
                CHECK(cudaMemcpy(dp, hp, sizeof(float) * (size_t)tot, cudaMemcpyHostToDevice) == cudaSuccess, "upload");
                const float *rmem;
                int64_t roff[N];
                int rnf[N], rml[N], same = 1;
                ac_status rs[N];
                CHECK_OK(ac_gpu_encode_resident(g, N, AC_PCM_F32, dp, ns, &rmem, roff, rnf, rml, rs));
                cudaStreamSynchronize(ac_gpu_stream(g));
                for (int i = 0; i < N; i++)
                    same &= rs[i] == st[i] && rnf[i] == nf[i] && rml[i] == ml[i] && roff[i] == off[i];
                CHECK(same, "resident PCM: statuses, frame counts, lengths and offsets as the host path");
                CHECK(same_rows(batch, rmem, roff, rnf, rs, N, D), "resident PCM gives the host path's frames bit for "
                      "bit");
                CHECK(ac_gpu_encode_resident(g, N, AC_PCM_F32, hp, ns, &rmem, roff, rnf, rml, rs) == AC_ERR_INVALID_ARG,
                      "host memory passed as resident PCM is refused");
                checks += 3;
                cudaFree(dp);
                free(hp);
            }
            for (int i = 0; i < N; i++) free(alone[i]);
            // int16 PCM = the same samples as float
            int16_t *xs[N];
            float *xq[N];
            for (int i = 0; i < N; i++) {
                xs[i] = malloc(sizeof(int16_t) * (size_t)ns[i]);
                xq[i] = malloc(sizeof(float) * (size_t)ns[i]);
                for (int64_t k = 0; k < ns[i]; k++) {
                    float v = x[i][k] * 32768.0f;
                    v = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
                    xs[i][k] = (int16_t)lrintf(v);
                    xq[i][k] = xs[i][k] / 32768.0f;
                }
            }
            ac_status sq[N];
            CHECK_OK(ac_gpu_encode_ex(g, N, AC_PCM_F32, (const void *const *)xq, ns, NULL, NULL, &mem, off, nf, ml, sq));
            cudaStreamSynchronize(ac_gpu_stream(g));
            CHECK(ac_gpu_encoder_staged_kind(g) == AC_PCM_F32, "AC_PCM_F32 is sent as float");
            float *qf[N];
            for (int i = 0; i < N; i++) qf[i] = sq[i] ? NULL : mem_rows(mem, off[i], nf[i], D);
            CHECK_OK(ac_gpu_encode_ex(g, N, AC_PCM_S16, (const void *const *)xs, ns, NULL, NULL, &mem, off, nf, ml, sq));
            cudaStreamSynchronize(ac_gpu_stream(g));
            double ws = 0;
            for (int i = 0; i < N; i++) {
                if (sq[i]) continue;
                float *h = mem_rows(mem, off[i], nf[i], D);
                ws = fmax(ws, rel_err(qf[i], h, (int64_t)nf[i] * D));
                free(h);
            }
            expect("fp32 int16 PCM vs the same samples as float", ws, TOL_GPU_BATCH_REL);
            // the front end reads either kind as the same float: not only close, identical
            CHECK(same_rows(qf, mem, off, nf, sq, N, D), "int16 PCM and the same samples as float give bit-identical "
                  "frames");
            // float input that packs losslessly goes over as int16 by itself, with the same result
            CHECK_OK(ac_gpu_encode(g, N, (const float *const *)xq, ns, &mem, off, nf, ml, sq));
            cudaStreamSynchronize(ac_gpu_stream(g));
            CHECK(ac_gpu_encoder_staged_kind(g) == AC_PCM_S16, "16-bit values as float are sent as int16");
            CHECK(same_rows(qf, mem, off, nf, sq, N, D), "packed float PCM gives the float path's frames bit for bit");
            checks += 4;
            for (int i = 0; i < N; i++) free(batch[i]), free(xs[i]), free(xq[i]), free(qf[i]);
            // a batch of only too-short clips: statuses, no work, no failure
            const float *xx[2] = {x[NF + 1], x[NF + 1]};
            int64_t nn[2] = {ns[NF + 1], ns[NF + 1]};
            ac_status s2[2];
            CHECK_OK(ac_gpu_encode(g, 2, xx, nn, &mem, off, nf, ml, s2));
            CHECK(s2[0] == AC_ERR_AUDIO && s2[1] == AC_ERR_AUDIO && nf[0] == 0, "all too short");
            checks += 2;
        }
        for (int i = 0; i < N; i++) stages_free(&gpu[i]);
        ac_gpu_model_free(g);
    }
    for (int i = 0; i < N; i++) {
        stages_free(&cpu[i]);
        free(x[i]);
    }
    ac_model_free(m);
}

// The tiny fixture with one value changed (`value` at element 0 of tensor `name`), written to a temporary file
// whose path goes to tmp; 0 if the tensor is not F32 or the file cannot be written (a failed check).
static int altered_copy(const char *path, const char *name, float value, char *tmp) {
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "open %s", path);
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    const long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size);
    const int read_ok = buf && fread(buf, 1, (size_t)size, f) == (size_t)size;
    fclose(f);
    uint64_t hlen = 0;
    for (int i = 7; read_ok && i >= 0; i--) hlen = hlen << 8 | buf[i];
    cJSON *hdr = read_ok && hlen + 8 <= (uint64_t)size ? cJSON_ParseWithLength((const char *)buf + 8, hlen) : NULL;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(hdr, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    int ok = cJSON_IsString(dt) && !strcmp(dt->valuestring, "F32") && cJSON_GetArraySize(offs) == 2;
    checks++;
    CHECK(ok, "%s: no F32 tensor %s to alter", path, name);
    strcpy(tmp, "/tmp/ac_range_XXXXXX");
    const int fd = ok ? mkstemp(tmp) : -1;
    if (ok) {
        memcpy(buf + 8 + hlen + (size_t)cJSON_GetArrayItem(offs, 0)->valuedouble, &value, 4);
        ok = fd >= 0 && write(fd, buf, (size_t)size) == size;
        checks++;
        CHECK(ok, "write %s", tmp);
    }
    if (fd >= 0) close(fd);
    cJSON_Delete(hdr);
    free(buf);
    return ok;
}

// The BF16 encoder's fp16 MLP operands (kernels/convnext_mlp_operand.cuh) against checkpoints beyond their range:
// a pwconv weight of 1e5 is refused at load, naming the tensor (FP32 takes it); a LayerNorm weight of 1e5 is
// loaded, and ac_gpu_encoder_fp16_bound names its block with a bound of at least 1e5 sqrt(C - 1), where the
// unaltered fixture's bound is finite and within 65504 (0 in FP32).
static void range_checks(const char *path) {
    for (int p = 0; p < 2; p++) {
        const ac_precision prec = p ? AC_PREC_BF16 : AC_PREC_FP32;
        ac_gpu_model *g = NULL;
        double bound = -1;
        const char *block = NULL;
        ac_status st = ac_gpu_model_load(path, 0, prec, &g);
        if (st == AC_OK) st = ac_gpu_encoder_fp16_bound(g, &bound, &block);
        checks++;
        CHECK(st == AC_OK && (p ? bound > 0 && bound <= 65504 && block && block[0] : bound == 0),
              "%s fixture's fp16 bound %g (%s): %s", p ? "bf16" : "fp32", bound, block ? block : "-",
              st ? ac_last_error() : "");
        if (p && st == AC_OK) printf("  tiny fixture: BF16 MLP operands bounded by %.4g (%s)\n", bound, block);
        ac_gpu_model_free(g);
    }
    const char *pw = "preprocessor.encoder.stages.0.0.pwconv1.weight";
    char tmp[32];
    if (altered_copy(path, pw, 1e5f, tmp)) {
        for (int p = 0; p < 2; p++) {
            const ac_precision prec = p ? AC_PREC_BF16 : AC_PREC_FP32;
            ac_gpu_model *g = NULL;
            ac_status st = ac_gpu_model_load(tmp, 0, prec, &g);
            if (st == AC_OK) st = ac_gpu_encoder_prepare(g);
            checks++;
            if (prec == AC_PREC_FP32) CHECK(st == AC_OK, "fp32 with a weight of 1e5: %s", ac_last_error());
            else
                CHECK(st == AC_ERR_INVALID_ARG && strstr(ac_last_error(), pw),
                      "bf16 with a weight of 1e5 must be refused naming %s (status %d: %s)", pw, (int)st,
                      st ? ac_last_error() : "");
            ac_gpu_model_free(g);
        }
        unlink(tmp);
    }
    const char *ln = "preprocessor.encoder.stages.1.0.norm.weight";
    if (altered_copy(path, ln, 1e5f, tmp)) {
        ac_gpu_model *g = NULL;
        double bound = 0;
        const char *block = NULL;
        ac_status st = ac_gpu_model_load(tmp, 0, AC_PREC_BF16, &g);
        int C = 0;
        if (st == AC_OK) {
            C = ac_gpu_model_config(g)->encoder.dims[1];
            st = ac_gpu_encoder_fp16_bound(g, &bound, &block);
        }
        checks++;
        CHECK(st == AC_OK && block && !strcmp(block, "stages.1.0") && bound >= 1e5 * sqrt(C - 1.0),
              "a LayerNorm weight of 1e5 in stages.1.0 (C %d): bound %g in %s, %s", C, bound, block ? block : "-",
              st ? ac_last_error() : "loaded");
        ac_gpu_model_free(g);
        unlink(tmp);
    }
}

int main(int argc, char **argv) {
    int ndev = 0;
    if (!ac_cuda_compiled() || ac_cuda_device_count(&ndev) != AC_OK || ndev == 0) {
        printf("test_cuda_encoder: no CUDA device: skipped\n");
        return AC_SKIP;
    }
    setenv("AC_ENC_POISON", "1", 1);  // every encoder buffer NaN before each call: unwritten elements fail
    const char *audio = argc > 2 ? argv[2] : AC_TEST_DATA "/audio";
    if (argc > 1) run_model(argv[1], audio);
    else {
        range_checks(AC_TEST_BIN "/fixture-tiny.safetensors");
        run_model(AC_TEST_BIN "/fixture-tiny.safetensors", audio);
        const char *full = AC_TEST_BIN "/fixture-full.safetensors";
        if (access(full, R_OK) == 0) run_model(full, audio);
        else printf("no %s (test_model_fixture_full converts it): full-size model not checked\n", full);
    }
    return test_finish("test_cuda_encoder", checks);
}
