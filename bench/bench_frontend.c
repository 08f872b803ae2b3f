// Benchmark: the CPU front end per 10 s clip (44.1 kHz stereo 16-bit WAV, the commonest archive format):
// decode (libsndfile, file in page cache), resample to 32 kHz + channel mean, log-mel (T=1001, 224).
// Prints per-stage medians over the clips and clips/s; bench/frontend_ref.py times the upstream PyTorch path on
// the same files, and bench/run_frontend.sh runs both side by side.
// usage: bench_frontend DIR [N_CLIPS=20] [THREADS=all]   (writes DIR/clip_XXX.wav if missing)
#include "bench_util.h"
#include "blas.h"
#include "ac.h"
#include "ref/ref_logmel.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_clip(const char *path, int seed) {
    const int sr = 44100, n = 10 * sr;
    SF_INFO info = {.samplerate = sr, .channels = 2, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    if (!sf) return -1;
    float *x = malloc(sizeof(float) * 2 * n);
    srand(seed);
    for (int i = 0; i < n; i++) {
        float noise = ((float)rand() / RAND_MAX - 0.5f) * 0.2f;
        x[2 * i] = 0.3f * (float)sin(2 * M_PI * (200 + 50 * seed) * i / sr) + noise;
        x[2 * i + 1] = 0.3f * (float)sin(2 * M_PI * (1000 + 30 * seed) * i / sr) - noise;
    }
    sf_writef_float(sf, x, n);
    sf_close(sf);
    free(x);
    return 0;
}

int main(int argc, char **argv) {
    ac_blas_retune(argv);  // the CLI's OpenBLAS kernels
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [N_CLIPS=20] [THREADS=all]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int n_clips = argc > 2 ? atoi(argv[2]) : 20;
    if (argc > 3) {
        omp_set_num_threads(atoi(argv[3]));
        openblas_set_num_threads(atoi(argv[3]));
    }
    mkdir(dir, 0777);
    double *t_dec = malloc(sizeof(double) * n_clips), *t_res = malloc(sizeof(double) * n_clips),
           *t_mel = malloc(sizeof(double) * n_clips), *t_all = malloc(sizeof(double) * n_clips);
    ac_frontend fe;
    if (ac_frontend_init_default(&fe) != AC_OK) return 1;
    if (ac_stft_plan_create(&fe, &fe.stft_plan) != AC_OK) {  // built once at model load in the engine
        fprintf(stderr, "bench_frontend: %s\n", ac_last_error());
        return 1;
    }
    float *lm = malloc(sizeof(float) * 1001 * 224);
    for (int i = -1; i < n_clips; i++) {  // i = -1: warm-up
        char path[1024];
        snprintf(path, sizeof path, "%s/clip_%03d.wav", dir, i < 0 ? 0 : i);
        if (access(path, R_OK) != 0 && write_clip(path, i < 0 ? 0 : i) != 0) {
            fprintf(stderr, "cannot write %s\n", path);
            return 1;
        }
        double t0 = bench_now();
        ac_audio a;
        if (ac_audio_load(path, &a, NULL) != AC_OK) {
            fprintf(stderr, "%s\n", ac_last_error());
            return 1;
        }
        double t1 = bench_now();
        float *x;
        int64_t n;
        if (ac_audio_to_model_rate(&a, 32000, &x, &n) != AC_OK) return 1;
        double t2 = bench_now();
        if (ac_logmel_ref(&fe, x, n, lm, ac_frontend_n_frames(&fe, n)) != AC_OK) return 1;
        double t3 = bench_now();
        if (i >= 0) {
            t_dec[i] = t1 - t0;
            t_res[i] = t2 - t1;
            t_mel[i] = t3 - t2;
            t_all[i] = t3 - t0;
        }
        free(x);
        ac_audio_free(&a);
    }
    double md = bench_median(t_dec, n_clips), mr = bench_median(t_res, n_clips), mm = bench_median(t_mel, n_clips),
           ma = bench_median(t_all, n_clips);
    printf("audiocap CPU front end, 10 s 44.1 kHz stereo WAV clips, %d clips, %d threads, median ms per clip:\n",
           n_clips, omp_get_max_threads());
    printf("  decode %.2f | resample+mean %.2f | log-mel %.2f | total %.2f ms  -> %.1f clips/s, %.0fx real time\n",
           1e3 * md, 1e3 * mr, 1e3 * mm, 1e3 * ma, 1.0 / ma, 10.0 / ma);
    printf("CSV,audiocap,%d,%.4f,%.4f,%.4f,%.4f\n", omp_get_max_threads(), 1e3 * md, 1e3 * mr, 1e3 * mm, 1e3 * ma);
    free(lm);
    ac_frontend_free(&fe);
    return 0;
}
