// Decode-only ceiling of a bulk run: the decode pool (host/pipeline.c: libsndfile decode, resampling to the model
// rate when the file's rate differs, channel mean) over a list of files with N threads, nothing else. bench/run_bulk.sh
// sets it beside `audiocap caption --check` (the whole bulk pipeline minus the model) on the same files and threads.
// usage: bench_decode THREADS FILE...           (prints one JSON line)
//        bench_decode --make DIR N RATE [SECONDS] (writes DIR/wav/fNNNN.wav and DIR/flac/fNNNN.flac: N distinct
//                                                 clips of SECONDS (10) mono 16-bit noise and tones, with libsndfile)
#include "../host/pipeline.h"

#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int make_files(const char *dir, int n, int rate, double seconds) {
    char path[4096];
    const int len = (int)(seconds * rate);
    if (len < 1 || n < 0) return 1;
    float *x = malloc(sizeof(float) * (size_t)len);
    if (!x) return 1;
    snprintf(path, sizeof path, "%s/wav", dir);
    mkdir(dir, 0777);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/flac", dir);
    mkdir(path, 0777);
    unsigned seed = 12345;
    for (int i = 0; i < n; i++) {
        const double f0 = 110.0 * (1 + i % 17), f1 = 1000.0 + 37.0 * i;  // distinct content: FLAC has real work
        for (int t = 0; t < len; t++) {
            seed = seed * 1664525u + 1013904223u;
            const double noise = ((seed >> 8) / 16777216.0 - 0.5) * 0.2;
            x[t] = (float)(0.3 * sin(2 * M_PI * f0 * t / rate) + 0.1 * sin(2 * M_PI * f1 * t / rate) + noise);
        }
        for (int k = 0; k < 2; k++) {
            snprintf(path, sizeof path, "%s/%s/f%04d.%s", dir, k ? "flac" : "wav", i, k ? "flac" : "wav");
            SF_INFO info = {.samplerate = rate, .channels = 1,
                            .format = (k ? SF_FORMAT_FLAC : SF_FORMAT_WAV) | SF_FORMAT_PCM_16};
            SNDFILE *f = sf_open(path, SFM_WRITE, &info);
            if (!f || sf_writef_float(f, x, len) != len) {
                fprintf(stderr, "bench_decode: cannot write %s: %s\n", path, sf_strerror(f));
                if (f) sf_close(f);
                free(x);
                return 1;
            }
            sf_close(f);
        }
    }
    free(x);
    return 0;
}

int main(int argc, char **argv) {
    ac_decode_tune_allocator();  // as the CLI does: the ceiling is measured under the same allocator policy
    if ((argc == 5 || argc == 6) && !strcmp(argv[1], "--make"))
        return make_files(argv[2], atoi(argv[3]), atoi(argv[4]), argc == 6 ? atof(argv[5]) : 10.0);
    if (argc < 3) {
        fprintf(stderr, "usage: bench_decode THREADS FILE... | bench_decode --make DIR N RATE [SECONDS]\n");
        return 2;
    }
    int threads = atoi(argv[1]), n = argc - 2, bad = 0;
    double audio_s = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ac_decode_pool *p;
    const ac_decode_opts o = {.sample_rate = 32000, .n_threads = threads, .window = 4 * threads};
    if (ac_decode_pool_start(argv + 2, n, &o, &p) != AC_OK) {
        fprintf(stderr, "bench_decode: %s\n", ac_last_error());
        return 1;
    }
    for (int i = 0; i < n; i++) {
        ac_decoded d;
        ac_decode_pool_take(p, i, &d);
        bad += d.st != AC_OK;
        audio_s += d.duration_s;
        free(d.x);
    }
    ac_decode_pool_stop(p);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("{\"bench\":\"decode\",\"threads\":%d,\"files\":%d,\"failed\":%d,\"audio_s\":%.1f,\"wall_s\":%.3f,"
           "\"files_per_s\":%.1f}\n", threads, n, bad, audio_s, wall, n / wall);
    return bad ? 1 : 0;
}
