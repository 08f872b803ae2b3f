// The bulk-run pipeline pieces (host/pipeline.c): the decode pool delivers every input in order, bit-identical to
// decoding it alone, whatever the thread count and window (bad files included); the segment planner covers a
// recording from start to end with windows of the asked length, stretching the last over a short tail; the
// GPU encoder's staging gather (host/gather.c) concatenates buffers exactly, serially and in parallel, and packs
// float PCM to int16 only when nothing is lost.
#include "../host/gather.h"
#include "../host/pipeline.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int check_plan(int64_t n, int rate, double seg, double hop, int want_k, int64_t want_last_start) {
    int64_t st[4096], ln[4096];
    int k = ac_plan_segments(n, rate, seg, hop, 1.0, 30.0, st, ln, 4096);
    int ok = k == want_k && k > 0 && st[0] == 0 && st[k - 1] + ln[k - 1] == n && st[k - 1] == want_last_start;
    for (int i = 1; i < k - 1 && ok; i++) ok = st[i] == st[i - 1] + (int64_t)(hop * rate + 0.5) && ln[i - 1] == (int64_t)(seg * rate + 0.5);
    for (int i = 0; i < k && ok; i++) ok = ln[i] > 0 && ln[i] <= 30 * rate;
    if (!ok) fprintf(stderr, "  plan n=%lld seg=%g hop=%g: got %d windows (want %d)\n", (long long)n, seg, hop, k, want_k);
    return ok;
}

// n buffers of pseudo-random sizes (some empty) gathered; every byte compared, and a guard past the end untouched
static int check_gather(int n, size_t mean) {
    const void **src = calloc((size_t)n + 1, sizeof(void *));
    size_t *bytes = calloc((size_t)n + 1, sizeof(size_t)), total = 0;
    uint64_t r = 0x9e3779b97f4a7c15ull * (uint64_t)(n + 1);
    for (int i = 0; i < n; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        bytes[i] = i % 7 == 3 ? 0 : mean / 2 + (size_t)(r % mean);
        unsigned char *b = malloc(bytes[i] ? bytes[i] : 1);
        for (size_t j = 0; j < bytes[i]; j++) b[j] = (unsigned char)(i * 31 + j * 7);
        src[i] = b;
        total += bytes[i];
    }
    unsigned char *dst = malloc(total + 64);
    memset(dst, 0xa5, total + 64);
    ac_gather_copy(dst, n, src, bytes);
    int ok = 1;
    size_t o = 0;
    for (int i = 0; i < n && ok; i++) {
        ok = memcmp(dst + o, src[i], bytes[i]) == 0;
        o += bytes[i];
    }
    for (int j = 0; j < 64 && ok; j++) ok = dst[total + j] == 0xa5;
    if (!ok) fprintf(stderr, "  gather of %d buffers (%zu bytes) differs\n", n, total);
    for (int i = 0; i < n; i++) free((void *)src[i]);
    free(src), free(bytes), free(dst);
    return ok;
}

// n clips of 16-bit values as float (count[i] samples, some clips empty) packed to int16: 1 and every value back
// exactly; then one sample `bad` put in clip `at`, `back` samples before its end (negative: none), must make it
// refuse
static int check_pack(int n, int64_t mean, int at, int64_t back, float bad) {
    float **x = calloc((size_t)n + 1, sizeof(float *));
    int64_t *count = calloc((size_t)n + 1, sizeof(int64_t)), total = 0;
    uint64_t r = 0x2545f4914f6cdd1dull * (uint64_t)(n + 3);
    for (int i = 0; i < n; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        count[i] = i % 5 == 2 ? 0 : mean / 2 + (int64_t)(r % (uint64_t)mean);
        x[i] = malloc(sizeof(float) * (size_t)(count[i] ? count[i] : 1));
        for (int64_t j = 0; j < count[i]; j++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            const int16_t q = j == 0 ? -32768 : j == 1 ? 32767 : (int16_t)(r >> 48);  // both ends of the range
            x[i][j] = q / 32768.0f;
        }
        total += count[i];
    }
    int16_t *dst = malloc(sizeof(int16_t) * (size_t)(total + 1));
    int ok = ac_gather_s16_exact(dst, n, (const float *const *)x, count) == 1;
    int64_t o = 0;
    for (int i = 0; i < n && ok; i++)
        for (int64_t j = 0; j < count[i] && ok; j++) ok = dst[o++] / 32768.0f == x[i][j];
    if (!ok) fprintf(stderr, "  pack of %d clips (%lld samples) refused or wrong\n", n, (long long)total);
    if (ok && back >= 0) {
        ok = at < n && back < count[at];
        if (!ok) fprintf(stderr, "  clip %d has no sample %lld before its end\n", at, (long long)back);
    }
    if (ok && back >= 0) {
        const int64_t pos = count[at] - 1 - back;
        x[at][pos] = bad;
        ok = ac_gather_s16_exact(dst, n, (const float *const *)x, count) == 0;
        if (!ok) fprintf(stderr, "  pack accepted %a at clip %d sample %lld\n", (double)bad, at, (long long)pos);
    }
    for (int i = 0; i < n; i++) free(x[i]);
    free(x), free(count), free(dst);
    return ok;
}

// ---- the job pool: order, and a worker whose device fails --------------------------------------------------
typedef struct {
    int id, fail;  // fail: this worker's device fails at its first job (returns AC_ERR_CUDA from then on)
    int runs;
} pool_worker;
typedef struct {
    int seq, runs, by;
    ac_status want;  // what the job itself returns (a bad batch: the status comes back, no worker is lost)
} pool_job;
static ac_status pool_fn(void *ctx, void *arg) {
    pool_worker *w = ctx;
    pool_job *j = arg;
    __atomic_add_fetch(&w->runs, 1, __ATOMIC_RELAXED);
    usleep(200 + 100 * (j->seq % 3));  // jobs finish out of order across workers
    if (w->fail) return AC_ERR_CUDA;
    j->runs++;
    j->by = w->id;
    return j->want;
}
// n_workers workers, the first `failing` of which fail; n jobs (job `bad` returns AC_ERR_IO). Returns 1 when
// every job came back in order, run once by a healthy worker with its own status, and `failing` workers were lost
// (when a healthy one remains; else every job comes back AC_ERR_CUDA and all but the last worker were lost).
static int check_job_pool(int n_workers, int failing, int n, int bad) {
    pool_worker ws[8];
    void *ctx[8];
    pool_job *jobs = calloc((size_t)n, sizeof *jobs);
    for (int w = 0; w < n_workers; w++) {
        ws[w] = (pool_worker){w, w < failing, 0};
        ctx[w] = &ws[w];
    }
    ac_job_pool *p;
    if (!jobs || ac_job_pool_start(n_workers, ctx, pool_fn, 4, &p) != AC_OK) return free(jobs), 0;
    int ok = 1, next = 0;
    const int all_fail = failing == n_workers;
    for (int i = 0; i < n; i++) {
        jobs[i] = (pool_job){i, 0, -1, i == bad ? AC_ERR_IO : AC_OK};
        while (ac_job_pool_inflight(p) >= 4) {  // take finished ones back first, as the CLI does
            ac_status st;
            pool_job *j = ac_job_pool_next(p, &st);
            ok &= j == &jobs[next++];
            ok &= all_fail ? st == AC_ERR_CUDA : st == j->want && j->runs == 1 && !ws[j->by].fail;
        }
        ac_job_pool_submit(p, &jobs[i]);
    }
    for (pool_job *j; (j = ac_job_pool_next(p, &(ac_status){0}));) ok &= j == &jobs[next++];
    ok &= next == n;
    const int lost = ac_job_pool_lost(p);
    ok &= lost == (all_fail ? n_workers - 1 : failing);
    ac_job_pool_stop(p);
    if (!all_fail)  // a failing worker stops at its first job (when all fail, the last one left runs every job)
        for (int w = 0; w < failing; w++) ok &= ws[w].runs <= 1;
    if (!ok)
        fprintf(stderr, "job pool: %d workers (%d failing), %d jobs: lost %d, taken back %d\n", n_workers, failing,
                n, lost, next);
    free(jobs);
    return ok;
}

int main(void) {
    int checks = 0;
    // the job pool: submission order whatever the workers; a worker whose device fails hands its job on
    CHECK(check_job_pool(3, 0, 40, 7), "%s", "three healthy workers: order and statuses");
    CHECK(check_job_pool(3, 1, 40, 7), "%s", "one of three fails: lost, its job run by another, order kept");
    CHECK(check_job_pool(4, 3, 40, -1), "%s", "three of four fail: the last one runs everything");
    CHECK(check_job_pool(2, 2, 10, -1), "%s", "every worker fails: the jobs come back AC_ERR_CUDA");
    checks += 4;
    // int16 packing of float PCM (the GPU encoder's staging): lossless or refused, serial and parallel
    CHECK(check_pack(6, 5000, 0, -1, 0), "%s", "");
    CHECK(check_pack(0, 10, 0, -1, 0), "%s", "");
    CHECK(check_pack(40, 1 << 18, 0, -1, 0), "%s", "");  // ~40 MiB of float: parallel above one core
    const float bads[] = {0.5f / 32768.0f, 1.0f, -1.0f - 1.0f / 32768.0f, NAN, INFINITY, -INFINITY, -0.0f,
                          1e-30f, 1e6f, 32767.5f / 32768.0f};
    for (int k = 0; k < (int)(sizeof bads / sizeof bads[0]); k++) {
        CHECK(check_pack(6, 5000, 5, k, bads[k]), "bad value %d", k);  // the end of a serial pack
        CHECK(check_pack(40, 1 << 18, 39, 7 * k, bads[k]), "bad value %d", k);  // the last clip, parallel
    }
    checks += 3 + 2 * (int)(sizeof bads / sizeof bads[0]);
    CHECK(check_gather(5, 1000), "%s", "");
    checks++;  // serial: below the parallel threshold
    CHECK(check_gather(37, (size_t)1 << 20), "%s", "");
    checks++;  // ~37 MiB: parallel when the machine has more than one core
    CHECK(check_gather(0, 16), "%s", "");
    checks++;
    // 90.5 s / 10 s: 9 windows, the last stretched to 10.5 s; 95.5 s: 10 windows (5.5 s tail stays separate)
    CHECK(check_plan(2896000, 32000, 10, 10, 9, 80 * 32000), "%s", "");
    checks++;
    CHECK(check_plan(3056000, 32000, 10, 10, 10, 90 * 32000), "%s", "");
    checks++;
    CHECK(check_plan(32000 * 10, 32000, 10, 10, 1, 0), "%s", "");
    checks++;      // exactly one window
    CHECK(check_plan(32000 * 3, 32000, 10, 10, 1, 0), "%s", "");
    checks++;       // shorter than a window
    CHECK(check_plan(2896000, 32000, 10, 5, 17, 80 * 32000), "%s", "");
    checks++;  // overlap: hop 5
    CHECK(check_plan(32000 * 3600 + 7, 32000, 30, 30, 121, 3570 * 32000 + 7), "%s", "");
    checks++;  // an hour + 7 samples: a last full window
    int64_t st[4], ln[4];
    CHECK(ac_plan_segments(32000 * 100, 32000, 10, 10, 1.0, 30.0, st, ln, 4) == 4, "%s", "");
    checks++;  // cap respected
    CHECK(ac_plan_segments(0, 32000, 10, 10, 1.0, 30.0, st, ln, 4) == 0, "%s", "");
    checks++;
    CHECK(ac_plan_segments(100, 32000, 10, 11, 1.0, 30.0, st, ln, 4) == 0, "%s", "");
    checks++;  // hop > segment: refused

    // decode pool vs one-by-one decoding
    const char *files[] = {"example.flac", "missing.wav", "speech_16k_mono.wav", "chirp_44k1_stereo_s24.flac",
                           "silence_32k_mono.wav", "noise_48k_6ch_f32.wav", "clipped_8k_mono.wav", "short_32k_mono.wav"};
    enum { NF = sizeof files / sizeof *files, N = 3 * NF };
    char *paths[N];
    for (int i = 0; i < N; i++) {
        paths[i] = malloc(512);
        snprintf(paths[i], 512, "%s/audio/%s", AC_TEST_DATA, files[i % NF]);
    }
    ac_decoded ref[NF];
    {
        ac_decode_pool *p;
        const ac_decode_opts o = {.sample_rate = 32000, .n_threads = 1, .window = 1};
        CHECK_OK(ac_decode_pool_start(paths, NF, &o, &p));
        for (int i = 0; i < NF; i++) ac_decode_pool_take(p, i, &ref[i]);
        ac_decode_pool_stop(p);
    }
    CHECK(ref[1].st == AC_ERR_IO && strstr(ref[1].error, "missing.wav") && !ref[1].x, "%s", "");
    checks++;
    CHECK(ref[0].st == AC_OK && ref[0].n == 96000 && ref[0].duration_s == 3.0, "%s", "");
    checks++;
    int64_t biggest = 0;
    for (int i = 0; i < NF; i++) biggest = ref[i].n > biggest ? ref[i].n : biggest;
    // threads (0: decoded when taken), window, sample limit (0: none)
    const int64_t configs[][3] = {{0, 1, 0}, {1, 1, 0}, {2, 1, 0}, {4, 2, 0}, {8, 3, 0}, {3, 64, 0}, {16, 5, 0},
                                  {4, 64, 1}, {8, 64, 100000}, {2, 64, 250000}};
    for (size_t c = 0; c < sizeof configs / sizeof *configs; c++) {
        ac_decode_pool *p;
        const ac_decode_opts o = {.sample_rate = 32000, .n_threads = (int)configs[c][0], .window = (int)configs[c][1],
                                  .max_samples = configs[c][2]};
        CHECK_OK(ac_decode_pool_start(paths, N, &o, &p));
        if (o.max_samples) usleep(50000);  // a slow consumer: without the limit, every file would be decoded ahead
        int same = 1;
        for (int i = 0; i < N; i++) {
            ac_decoded d;
            ac_decode_pool_take(p, i, &d);
            const ac_decoded *r = &ref[i % NF];
            same &= d.st == r->st && d.n == r->n && d.duration_s == r->duration_s && !strcmp(d.error, r->error) &&
                    (!r->x || !memcmp(d.x, r->x, sizeof(float) * (size_t)r->n));
            free(d.x);
        }
        // a claim needs held < limit; each thread in flight then adds at most one file
        const int64_t peak = ac_decode_pool_peak_samples(p);
        const int bounded = !o.max_samples || peak < o.max_samples + o.n_threads * biggest;
        ac_decode_pool_stop(p);
        if (!same) fprintf(stderr, "  threads %d window %d limit %lld: differs\n", o.n_threads, o.window,
                           (long long)o.max_samples);
        CHECK(same, "threads %d window %d", o.n_threads, o.window);
        CHECK(bounded, "threads %d limit %lld: %lld samples held at once", o.n_threads, (long long)o.max_samples,
              (long long)peak);
        checks += 2;
    }
    {
        // heads: each input's first second bit for bit, with the whole file's duration
        ac_decode_pool *p;
        const ac_decode_opts o = {.sample_rate = 32000, .head_s = 1.0 + AC_RESAMPLE_SUPPORT_S, .n_threads = 3,
                                  .window = 4};
        CHECK_OK(ac_decode_pool_start(paths, NF, &o, &p));
        int same = 1;
        for (int i = 0; i < NF; i++) {
            ac_decoded d;
            ac_decode_pool_take(p, i, &d);
            const int64_t m = ref[i].n < 32000 ? ref[i].n : 32000;
            same &= d.st == ref[i].st && d.duration_s == ref[i].duration_s && d.n >= m && d.n <= ref[i].n &&
                    (!ref[i].x || !memcmp(d.x, ref[i].x, sizeof(float) * (size_t)m));
            free(d.x);
        }
        ac_decode_pool_stop(p);
        CHECK(same, "%s", "heads differ from the whole files' starts");
        checks++;
    }
    // stopping early (a failed run) frees what was decoded ahead and joins the threads (ASan checks the leaks)
    {
        ac_decode_pool *p;
        const ac_decode_opts o = {.sample_rate = 32000, .n_threads = 4, .window = 8};
        CHECK_OK(ac_decode_pool_start(paths, N, &o, &p));
        ac_decoded d;
        ac_decode_pool_take(p, 0, &d);
        free(d.x);
        ac_decode_pool_stop(p);
        checks++;
    }
    ac_decode_pool *p = NULL;
    const ac_decode_opts bad = {.sample_rate = 32000, .n_threads = -1, .window = 1};
    CHECK(ac_decode_pool_start(paths, N, &bad, &p) == AC_ERR_INVALID_ARG && !p, "%s", "");
    checks++;
    for (int i = 0; i < NF; i++) free(ref[i].x);
    for (int i = 0; i < N; i++) free(paths[i]);
    return test_finish("test_pipeline", checks);
}
