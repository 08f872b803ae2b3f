// The decode side of a bulk run: a pool of threads that decode (libsndfile, in process) and resample the inputs to
// the model rate ahead of the consumer, which takes them strictly in input order. At most `window` inputs are
// decoded but not yet taken, so memory stays bounded however long the list; the model side never waits for a
// file unless decoding is the bottleneck.
//
//   ac_decode_pool *p;  ac_decode_pool_start(paths, n, 32000, 4, 64, &p);
//   for (int i = 0; i < n; i++) { ac_decoded d; ac_decode_pool_take(p, i, &d); ...; free(d.x); }
//   ac_decode_pool_stop(p);
#ifndef AC_PIPELINE_H
#define AC_PIPELINE_H

#include "ac.h"

typedef struct {
    ac_status st;       // AC_OK, or why the file cannot be captioned (the row's error)
    char error[1024];
    float *x;           // mono at the model rate, the whole file or its head (malloc'ed, the taker frees it);
                        // NULL on error
    int64_t n;
    double duration_s;  // of the whole file (before resampling), also when only its head was decoded
} ac_decoded;

typedef struct ac_decode_pool ac_decode_pool;

typedef struct {
    int sample_rate;  // the model's: every input is resampled to it, mono
    double head_s;    // > 0: decode only each file's first head_s seconds (ac_audio_load_mono), for a run that
                      // uses only the start of long files; 0: whole files
    int n_threads;    // 0: no threads, each input is decoded when taken (for a CPU model that uses every core: a
                      // decode thread beside OpenMP teams stalls their barriers)
    int window;       // >= 1: at most this many inputs decoded and not yet taken...
    int64_t max_samples;  // ...holding at most this many samples, unless the next input to take is among them (so
                          // a run of long recordings does not hold dozens of them whole); 0: no limit
} ac_decode_opts;

// paths must outlive the pool.
ac_status ac_decode_pool_start(char *const *paths, int n, const ac_decode_opts *opts, ac_decode_pool **out);
// Blocks until input i is decoded and moves it into *out. Inputs must be taken in order 0, 1, 2, ...
void ac_decode_pool_take(ac_decode_pool *p, int i, ac_decoded *out);
// Stops the threads (they finish the file in hand) and frees what was decoded but not taken. NULL is fine.
void ac_decode_pool_stop(ac_decode_pool *p);
// The most samples held decoded and not taken at any moment so far (for tests and benchmarks).
int64_t ac_decode_pool_peak_samples(ac_decode_pool *p);
// For a program whose main work is a bulk run (the CLI, bench_decode), called once at its start: keeps freed
// decode buffers in the allocator for reuse instead of handing their pages back to the kernel (glibc only; a
// no-op elsewhere). A process-wide setting, so the library never makes it on its own.
void ac_decode_tune_allocator(void);

// Long recordings as timed segments: windows of seg_s seconds every hop_s seconds (hop_s <= seg_s) over n samples
// at `rate`, the last ending at the end of the file. When the audio left after a window is shorter than
// min_tail_s, that window is stretched to the end instead (as long as it stays within max_s; else one more full
// window ends at the end of the file), so no sliver of a second becomes a caption of its own. Writes up to cap (start, length) pairs in samples; returns the count.
int ac_plan_segments(int64_t n, int rate, double seg_s, double hop_s, double min_tail_s, double max_s,
                     int64_t *start, int64_t *len, int cap);

// The model side of a bulk run: one worker thread per device (or engine instance), each calling fn(ctx[w], job)
// on jobs taken in submission order; finished jobs come back strictly in submission order, so rows are written
// in input order however many workers run. At most max_inflight jobs are submitted and not yet taken back.
// fn returning AC_ERR_CUDA says the worker's device failed: that worker stops and another one runs the job again
// from the start (fn must allow that: a job's results are overwritten, never accumulated); only when no other
// worker is left does the job finish with AC_ERR_CUDA. A GPU that dies in a long run costs its share of the
// throughput, not the run.
typedef ac_status (*ac_job_fn)(void *worker_ctx, void *job);
typedef struct ac_job_pool ac_job_pool;

ac_status ac_job_pool_start(int n_workers, void *const *worker_ctx, ac_job_fn fn, int max_inflight, ac_job_pool **out);
// Blocks while max_inflight jobs are in flight (the caller should take finished ones back first: see below).
void ac_job_pool_submit(ac_job_pool *p, void *job);
int ac_job_pool_inflight(const ac_job_pool *p);
int ac_job_pool_lost(const ac_job_pool *p);  // workers stopped by a device failure so far
// The oldest job, once it is finished (blocking; NULL when none is in flight); *st is what fn returned.
// ac_job_pool_try_next returns NULL at once when the oldest job is not finished yet.
void *ac_job_pool_next(ac_job_pool *p, ac_status *st);
void *ac_job_pool_try_next(ac_job_pool *p, ac_status *st);
// Waits for the jobs in flight, stops the workers. The jobs not taken back are the caller's. NULL is fine.
void ac_job_pool_stop(ac_job_pool *p);

#endif
