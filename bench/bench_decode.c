// Decode-only ceiling of a bulk run: the decode pool (host/pipeline.c: libsndfile decode, resampling to the model
// rate when the file's rate differs, channel mean) over a list of files with N threads, nothing else. bench/run_bulk.sh
// sets it beside `audiocap caption --check` (the whole bulk pipeline minus the model) on the same files and threads.
// usage: bench_decode THREADS FILE...   (prints one JSON line)
#include "../host/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_decode THREADS FILE...\n");
        return 2;
    }
    int threads = atoi(argv[1]), n = argc - 2, bad = 0;
    double audio_s = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ac_decode_pool *p;
    if (ac_decode_pool_start(argv + 2, n, 32000, threads, 4 * threads, &p) != AC_OK) {
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
