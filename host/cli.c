// audiocap command-line tool: git-style subcommands over the library in ac.h.
//   audiocap features [--dump-dir DIR] [-o FILE] [--threads N] [-q] INPUT...
//   audiocap info [--tensors] MODEL
//   audiocap devices
//   audiocap version
// Per-input failures become JSON rows with status "error" and the run goes on; the exit code is non-zero
// only for usage errors (2) or systemic failures such as an unwritable output (1).
#include "../kernels/device.h"
#include "ac.h"
#include "blas.h"
#include "model_file.h"
#include "npy.h"
#include "ref/ref_logmel.h"
#include "status.h"
#include "cli.h"
#include "inputs.h"
#include "pipeline.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <cblas.h>

#define MODEL_SR 32000

static void usage_main(FILE *f) {
    fprintf(f,
            "audiocap %s: natural-language captions for audio (CoNeTTE family)\n\n"
            "usage: audiocap <command> [options]\n\n"
            "commands:\n"
            "  caption    caption audio files with a model (CPU, or CUDA GPUs with --device)\n"
            "  features   decode, resample to 32 kHz and compute the model's log-mel features\n"
            "  info       validate a model file and summarise it (hyper-parameters, vocabulary, tensors)\n"
            "  devices    list CUDA devices and run a launch self-test on each\n"
            "  version    print version and build configuration\n\n"
            "'audiocap <command> --help' shows every option of a command with its default.\n",
            AC_VERSION);
}

static void usage_features(FILE *f) {
    fprintf(f,
            "usage: audiocap features [options] INPUT...\n\n"
            "Decodes each INPUT (WAV, AIFF, FLAC, Ogg Vorbis, Opus, MP3; any channels; 1-768 kHz; a directory means\n"
            "every audio file below it), resamples it to 32 kHz exactly as torchaudio.functional.resample does,\n"
            "averages channels, and computes the CoNeTTE\n"
            "log-mel features (T, 224). Writes one JSON object per input, in input order.\n\n"
            "options:\n"
            "  --dump-dir DIR   write DIR/<id>/audio_32k.npy (n,) and DIR/<id>/logmel.npy (T, 224)  [off]\n"
            "  -o, --output F   write the JSON lines to F                                   [stdout]\n"
            "  --threads N      CPU threads for BLAS and OpenMP                              [all cores]\n"
            "  -q, --quiet      no summary on stderr                                         [off]\n"
            "  -h, --help       this help\n\n"
            "Row fields: id, path, status (ok|error), error, sample_rate, channels, container, codec,\n"
            "duration_s, samples_32k, frames, logmel_min_db, logmel_max_db, logmel_mean_db.\n"
            "id is the file name, or the path as given when two inputs share a file name.\n");
}

static void usage_info(FILE *f) {
    fprintf(f,
            "usage: audiocap info [options] MODEL\n\n"
            "Opens MODEL (a .safetensors model file written by tools/convert.py, format in weights/FORMAT.md),\n"
            "validates all of it, and prints the format version, architecture, encoder/decoder hyper-parameters,\n"
            "front-end parameters, decoding defaults and tasks, the vocabulary size and first tokens, the converted\n"
            "sources, and tensor and parameter counts per dtype. For an invalid file it prints the problems found\n"
            "on stderr and exits 1.\n\n"
            "options:\n"
            "  --tensors    also list every tensor: name, dtype, shape, data offset   [off]\n"
            "  -h, --help   this help\n");
}

static int cmd_info(int argc, char **argv) {
    static struct option opts[] = {{"tensors", no_argument, 0, 't'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int list_tensors = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't': list_tensors = 1; break;
        case 'h': usage_info(stdout); return 0;
        default: usage_info(stderr); return 2;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "audiocap info: %s\n\n", optind >= argc ? "no MODEL given" : "give exactly one MODEL");
        usage_info(stderr);
        return 2;
    }
    ac_model_file *mf;
    if (ac_model_file_open(argv[optind], &mf) != AC_OK) {
        fprintf(stderr, "audiocap info: %s\n", ac_last_error());
        return 1;
    }
    int rc = 0;
    if (ac_model_file_print_info(mf, stdout, list_tensors) != AC_OK || fflush(stdout) != 0) {
        fprintf(stderr, "audiocap info: cannot write output: %s\n", strerror(errno));
        rc = 1;
    }
    ac_model_file_close(mf);
    return rc;
}

int cli_cpu_count(void) {
#ifdef _OPENMP
    return omp_get_max_threads();  // honours OMP_NUM_THREADS and the CPU affinity mask (Slurm, taskset)
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
#endif
}

void cli_set_threads(int n) {
    if (n <= 0) return;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(n);
}

int cli_mkdir_p(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return -1;
    return 0;
}

ac_status cli_dump_dir(const char *root, const char *id, char *dir, size_t cap) {
    int n = snprintf(dir, cap, "%s/", root);
    for (const char *p = id; *p && n + 1 < (int)cap; p++) dir[n++] = *p == '/' ? '_' : *p;
    dir[n < (int)cap ? n : (int)cap - 1] = '\0';
    if (cli_mkdir_p(dir) != 0)
        return ac_fail(AC_ERR_IO, "%s: cannot create dump directory: %s", dir, strerror(errno));
    return AC_OK;
}

typedef struct {
    int ok, failed;
    double audio_s;
} summary;

static ac_status features_one(const ac_frontend *fe, const char *path, const char *id, const char *dump_dir,
                              cJSON *row, double *audio_s) {
    ac_audio a;
    ac_audio_info info;
    float *x = NULL, *logmel = NULL;
    int64_t n = 0;
    ac_status st = ac_audio_load(path, &a, &info);
    if (st) return st;
    cJSON_AddNumberToObject(row, "sample_rate", a.sample_rate);
    cJSON_AddNumberToObject(row, "channels", a.channels);
    cJSON_AddStringToObject(row, "container", info.container);
    cJSON_AddStringToObject(row, "codec", info.codec);
    cJSON_AddNumberToObject(row, "duration_s", (double)a.n_frames / a.sample_rate);
    *audio_s = (double)a.n_frames / a.sample_rate;
    st = ac_audio_to_model_rate(&a, MODEL_SR, &x, &n);
    ac_audio_free(&a);
    if (st) goto done;
    cJSON_AddNumberToObject(row, "samples_32k", (double)n);
    int64_t T = ac_frontend_n_frames(fe, n);
    logmel = malloc(sizeof(float) * T * fe->n_mels);
    if (!logmel) {
        st = ac_fail(AC_ERR_NOMEM, "%s: out of memory for %lld log-mel frames", path, (long long)T);
        goto done;
    }
    st = ac_logmel_ref(fe, x, n, logmel, T);
    if (st) {  // the library message does not know the file: prefix it
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", ac_last_error());
        ac_fail(st, "%s: %s", path, msg);
        goto done;
    }
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    for (int64_t i = 0; i < T * fe->n_mels; i++) {
        mn = fmin(mn, logmel[i]);
        mx = fmax(mx, logmel[i]);
        sum += logmel[i];
    }
    cJSON_AddNumberToObject(row, "frames", (double)T);
    cJSON_AddNumberToObject(row, "logmel_min_db", mn);
    cJSON_AddNumberToObject(row, "logmel_max_db", mx);
    cJSON_AddNumberToObject(row, "logmel_mean_db", sum / (double)(T * fe->n_mels));
    if (dump_dir) {
        char dir[4096], file[4200];
        if ((st = cli_dump_dir(dump_dir, id, dir, sizeof dir))) goto done;
        snprintf(file, sizeof file, "%s/audio_32k.npy", dir);
        st = ac_npy_write_f32(file, x, 1, &n);
        if (st) goto done;
        snprintf(file, sizeof file, "%s/logmel.npy", dir);
        int64_t shape[2] = {T, fe->n_mels};
        st = ac_npy_write_f32(file, logmel, 2, shape);
    }
done:
    free(x);
    free(logmel);
    return st;
}

static int cmd_features(int argc, char **argv) {
    static struct option opts[] = {{"dump-dir", required_argument, 0, 'd'}, {"output", required_argument, 0, 'o'},
                                   {"threads", required_argument, 0, 't'},  {"quiet", no_argument, 0, 'q'},
                                   {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    const char *dump_dir = NULL, *out_path = NULL;
    int quiet = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dump_dir = optarg; break;
        case 'o': out_path = optarg; break;
        case 't': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 4096) {
                fprintf(stderr, "audiocap features: --threads wants a positive integer, got '%s'\n", optarg);
                return 2;
            }
            cli_set_threads((int)v);
            break;
        }
        case 'q': quiet = 1; break;
        case 'h': usage_features(stdout); return 0;
        default: usage_features(stderr); return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "audiocap features: no INPUT given\n\n");
        usage_features(stderr);
        return 2;
    }
    FILE *out = stdout;
    if (out_path && !(out = fopen(out_path, "w"))) {
        fprintf(stderr, "audiocap features: cannot write %s: %s\n", out_path, strerror(errno));
        return 1;
    }
    if (dump_dir && cli_mkdir_p(dump_dir) != 0) {
        fprintf(stderr, "audiocap features: cannot create --dump-dir %s: %s\n", dump_dir, strerror(errno));
        return 1;
    }
    ac_frontend fe;
    if (ac_frontend_init_default(&fe) != AC_OK) {
        fprintf(stderr, "audiocap features: %s\n", ac_last_error());
        return 1;
    }
    ac_inputs in = {0};  // files and directories, ids as audiocap caption makes them
    ac_status ist = AC_OK;
    for (int i = optind; i < argc && !ist; i++) ist = ac_inputs_add(&in, argv[i]);
    if (!ist) ist = ac_inputs_make_ids(&in);
    if (ist) {
        fprintf(stderr, "audiocap features: %s\n", ac_last_error());
        ac_inputs_free(&in);
        ac_frontend_free(&fe);
        return 1;
    }
    const int n_in = in.n;
    char **inputs = in.paths;
    summary sum = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = 0;
    for (int i = 0; i < n_in; i++) {
        cJSON *row = cJSON_CreateObject();
        const char *id = in.ids[i];
        cJSON_AddStringToObject(row, "id", id);
        cJSON_AddStringToObject(row, "path", inputs[i]);
        double audio_s = 0;
        ac_clear_error();
        ac_status st = features_one(&fe, inputs[i], id, dump_dir, row, &audio_s);
        cJSON_AddStringToObject(row, "status", st == AC_OK ? "ok" : "error");
        if (st == AC_OK) {
            cJSON_AddNullToObject(row, "error");
            sum.ok++;
            sum.audio_s += audio_s;
        } else {
            cJSON_AddStringToObject(row, "error", ac_last_error());
            cJSON_AddStringToObject(row, "error_kind", ac_status_name(st));
            sum.failed++;
        }
        char *s = cJSON_PrintUnformatted(row);
        cJSON_Delete(row);
        if (!s || fprintf(out, "%s\n", s) < 0 || fflush(out) != 0) {
            fprintf(stderr, "audiocap features: cannot write output: %s\n", strerror(errno));
            free(s);
            rc = 1;
            break;
        }
        free(s);
        if (st == AC_ERR_NOMEM) {  // systemic: the machine, not the file
            rc = 1;
            break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (!quiet)
        fprintf(stderr, "audiocap features: %d ok, %d failed, %.1f s of audio in %.2f s (%.0fx real time)\n", sum.ok,
                sum.failed, sum.audio_s, wall, wall > 0 ? sum.audio_s / wall : 0.0);
    ac_frontend_free(&fe);
    ac_inputs_free(&in);
    if (out != stdout && fclose(out) != 0) {
        fprintf(stderr, "audiocap features: cannot close %s: %s\n", out_path, strerror(errno));
        rc = 1;
    }
    return rc;
}

static int cmd_devices(void) {
    int n = 0;
    if (!ac_cuda_compiled()) {
        printf("built without CUDA: CPU only\n");
        return 0;
    }
    if (ac_cuda_device_count(&n) != AC_OK) {
        fprintf(stderr, "audiocap devices: %s\n", ac_last_error());
        return 1;
    }
    if (n == 0) printf("no CUDA device found (the CPU path will be used)\n");
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char buf[256];
        if (ac_cuda_device_describe(i, buf, sizeof buf) != AC_OK || ac_cuda_selftest(i) != AC_OK) {
            fprintf(stderr, "cuda:%d: %s\n", i, ac_last_error());
            rc = 1;
            continue;
        }
        printf("%s  [self-test ok]\n", buf);
    }
    return rc;
}

static int cmd_version(void) {
    printf("audiocap %s\n", AC_VERSION);
    printf("libsndfile: %s\n", sf_version_string());
    printf("cJSON: %s\n", cJSON_Version());
    printf("OpenBLAS: %s (kernels: %s%s)\n", openblas_get_config(), openblas_get_corename(),
           getenv("OPENBLAS_CORETYPE") ? ", OPENBLAS_CORETYPE set" : "");
#ifdef _OPENMP
    printf("OpenMP: %d (max threads %d)\n", _OPENMP, omp_get_max_threads());
#else
    printf("OpenMP: off\n");
#endif
    printf("CUDA: %s\n", ac_cuda_compiled() ? "compiled in" : "off");
    return 0;
}

int main(int argc, char **argv) {
    ac_blas_retune(argv);
    ac_decode_tune_allocator();  // host/pipeline.h: decode buffers reused, not faulted in per file
    if (argc < 2) {
        usage_main(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage_main(stdout);
        return 0;
    }
    if (!strcmp(cmd, "features")) return cmd_features(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "caption")) return cli_caption(argc - 1, argv + 1);
    if (!strcmp(cmd, "devices")) return cmd_devices();
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) return cmd_version();
    fprintf(stderr, "audiocap: unknown command '%s'\n\n", cmd);
    usage_main(stderr);
    return 2;
}
