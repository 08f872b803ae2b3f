// Decode pool (see pipeline.h). Slot i % window holds input i between its decoding and its taking; a thread
// claims the next input only while fewer than `window` inputs are ahead of the consumer, so slots are never
// reused before they are taken.
#include "pipeline.h"
#include "status.h"

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ac_decoded d;
    int seq;  // input index held, -1 when empty
} slot;

struct ac_decode_pool {
    char *const *paths;
    int n, sample_rate, window, n_threads;
    double head_s;
    int64_t max_samples, held, peak;  // samples decoded and not taken: the limit, now, the most so far
    int next;   // next input to claim
    int taken;  // inputs taken by the consumer
    int stop;
    slot *slots;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t can_claim, ready;
};

static void decode_one(const char *path, int sample_rate, double head_s, ac_decoded *d) {
    memset(d, 0, sizeof *d);
    ac_clear_error();
    d->st = ac_audio_load_mono(path, sample_rate, head_s, &d->x, &d->n, &d->duration_s);
    if (d->st) snprintf(d->error, sizeof d->error, "%s", ac_last_error());
}

static void *worker(void *arg) {
    ac_decode_pool *p = arg;
    // the pool's threads are the parallelism: a resampler's OpenMP loop (upsampling a block yields > 64 k
    // outputs) would otherwise start a team of every core inside each of them
    omp_set_num_threads(1);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->next < p->n &&
               (p->next >= p->taken + p->window ||
                (p->max_samples > 0 && p->held >= p->max_samples && p->next > p->taken)))
            pthread_cond_wait(&p->can_claim, &p->mu);
        if (p->stop || p->next >= p->n) break;
        const int i = p->next++;
        pthread_mutex_unlock(&p->mu);
        ac_decoded d;
        decode_one(p->paths[i], p->sample_rate, p->head_s, &d);
        pthread_mutex_lock(&p->mu);
        slot *s = &p->slots[i % p->window];
        s->d = d;
        s->seq = i;
        p->held += d.n;
        if (p->held > p->peak) p->peak = p->held;
        pthread_cond_broadcast(&p->ready);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ac_status ac_decode_pool_start(char *const *paths, int n, const ac_decode_opts *o, ac_decode_pool **out) {
    *out = NULL;
    if (n < 0 || !o || o->n_threads < 0 || o->window < 1 || o->sample_rate <= 0 || !(o->head_s >= 0) ||
        o->max_samples < 0)
        return ac_fail(AC_ERR_INVALID_ARG, "decode pool: bad arguments (n %d, threads %d, window %d)", n,
                       o ? o->n_threads : -1, o ? o->window : -1);
    const int n_threads = o->n_threads, window = o->window;
    ac_decode_pool *p = calloc(1, sizeof *p);
    if (!p) return ac_fail(AC_ERR_NOMEM, "decode pool: out of memory");
    p->paths = paths;
    p->n = n;
    p->sample_rate = o->sample_rate;
    p->head_s = o->head_s;
    p->max_samples = o->max_samples;
    p->window = window;
    p->slots = calloc((size_t)window, sizeof(slot));
    p->threads = calloc((size_t)n_threads, sizeof(pthread_t));
    if (!p->slots || !p->threads) {
        free(p->slots);
        free(p->threads);
        free(p);
        return ac_fail(AC_ERR_NOMEM, "decode pool: out of memory");
    }
    for (int i = 0; i < window; i++) p->slots[i].seq = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->can_claim, NULL);
    pthread_cond_init(&p->ready, NULL);
    for (int t = 0; t < n_threads; t++) {
        int e = pthread_create(&p->threads[t], NULL, worker, p);
        if (e) {
            ac_decode_pool_stop(p);
            return ac_fail(AC_ERR_NOMEM, "decode pool: cannot start thread %d: %s (hint: lower --decode-threads)", t,
                           strerror(e));
        }
        p->n_threads++;
    }
    *out = p;
    return AC_OK;
}

void ac_decode_pool_take(ac_decode_pool *p, int i, ac_decoded *out) {
    if (p->n_threads == 0) {  // no threads: decode here, now
        decode_one(p->paths[i], p->sample_rate, p->head_s, out);
        return;
    }
    pthread_mutex_lock(&p->mu);
    slot *s = &p->slots[i % p->window];
    while (s->seq != i) pthread_cond_wait(&p->ready, &p->mu);
    *out = s->d;
    memset(&s->d, 0, sizeof s->d);
    s->seq = -1;
    p->taken = i + 1;
    p->held -= out->n;
    pthread_cond_broadcast(&p->can_claim);
    pthread_mutex_unlock(&p->mu);
}

int64_t ac_decode_pool_peak_samples(ac_decode_pool *p) {
    pthread_mutex_lock(&p->mu);
    const int64_t v = p->peak;
    pthread_mutex_unlock(&p->mu);
    return v;
}

void ac_decode_pool_stop(ac_decode_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->can_claim);
    pthread_mutex_unlock(&p->mu);
    for (int t = 0; t < p->n_threads; t++) pthread_join(p->threads[t], NULL);
    for (int i = 0; i < p->window; i++) free(p->slots[i].d.x);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->can_claim);
    pthread_cond_destroy(&p->ready);
    free(p->slots);
    free(p->threads);
    free(p);
}

int ac_plan_segments(int64_t n, int rate, double seg_s, double hop_s, double min_tail_s, double max_s,
                     int64_t *start, int64_t *len, int cap) {
    const int64_t seg = (int64_t)(seg_s * rate + 0.5), hop = (int64_t)(hop_s * rate + 0.5);
    const int64_t tail = (int64_t)(min_tail_s * rate + 0.5), max_len = (int64_t)(max_s * rate + 0.5);
    if (n <= 0 || seg <= 0 || hop <= 0 || hop > seg || cap <= 0) return 0;
    int k = 0;
    for (int64_t s = 0; k < cap; s += hop) {
        int64_t e = s + seg < n ? s + seg : n;
        if (e < n && n - e < tail && n - s <= max_len) e = n;  // stretch over a sliver of a tail
        start[k] = s;
        len[k++] = e - s;
        if (e >= n) break;
        if (n - e < tail && k < cap) {  // a sliver that cannot join: the last window ends at the end instead
            start[k] = n - seg;
            len[k++] = seg;
            break;
        }
    }
    return k;
}

// ---- job pool ---------------------------------------------------------------------------------------------------
// A ring of max_inflight slots indexed by submission number: workers claim the next unclaimed job, the consumer
// takes the oldest back once done. A job whose worker lost its device (fn returned AC_ERR_CUDA) goes on the retry
// list, which workers serve before new jobs; the worker stops, unless it is the last one alive.
typedef struct {
    void *job;
    ac_status st;
    int done;
} job_slot;

struct ac_job_pool {
    int n_workers, cap;
    void *const *ctx;
    ac_job_fn fn;
    long submitted, claimed, taken;
    int stop;
    int alive, lost;     // workers still taking jobs; workers stopped by a device failure
    long *retry;         // submission numbers of jobs to run again (at most one per lost worker)
    int n_retry;
    job_slot *ring;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t work, done, room;
};

typedef struct {
    ac_job_pool *p;
    int w;
} job_worker_arg;

static void *job_worker(void *arg) {
    job_worker_arg *a = arg;
    ac_job_pool *p = a->p;
    void *ctx = p->ctx[a->w];
    free(a);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && !p->n_retry && p->claimed == p->submitted) pthread_cond_wait(&p->work, &p->mu);
        if (!p->n_retry && p->claimed == p->submitted) break;  // stopping and nothing left
        job_slot *s = &p->ring[(p->n_retry ? p->retry[--p->n_retry] : p->claimed++) % p->cap];
        pthread_mutex_unlock(&p->mu);
        ac_status st = p->fn(ctx, s->job);
        pthread_mutex_lock(&p->mu);
        if (st == AC_ERR_CUDA && p->alive > 1) {  // this worker's device failed: another one takes the job
            p->alive--;
            p->lost++;
            p->retry[p->n_retry++] = s - p->ring;
            pthread_cond_signal(&p->work);
            break;
        }
        s->st = st;
        s->done = 1;
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ac_status ac_job_pool_start(int n_workers, void *const *worker_ctx, ac_job_fn fn, int max_inflight, ac_job_pool **out) {
    *out = NULL;
    if (n_workers < 1 || max_inflight < 1 || !fn)
        return ac_fail(AC_ERR_INVALID_ARG, "job pool: bad arguments (workers %d, in flight %d)", n_workers, max_inflight);
    ac_job_pool *p = calloc(1, sizeof *p);
    if (!p) return ac_fail(AC_ERR_NOMEM, "job pool: out of memory");
    p->cap = max_inflight;
    p->ctx = worker_ctx;
    p->fn = fn;
    p->ring = calloc((size_t)max_inflight, sizeof(job_slot));
    p->threads = calloc((size_t)n_workers, sizeof(pthread_t));
    p->retry = calloc((size_t)n_workers, sizeof(long));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    pthread_cond_init(&p->room, NULL);
    if (!p->ring || !p->threads || !p->retry) {
        ac_job_pool_stop(p);
        return ac_fail(AC_ERR_NOMEM, "job pool: out of memory");
    }
    p->alive = n_workers;  // set before any worker runs (a failed start stops the pool)
    for (int w = 0; w < n_workers; w++) {
        job_worker_arg *a = malloc(sizeof *a);
        int e = a ? 0 : ENOMEM;
        if (a) {
            *a = (job_worker_arg){p, w};
            e = pthread_create(&p->threads[w], NULL, job_worker, a);
            if (e) free(a);
        }
        if (e) {
            ac_job_pool_stop(p);
            return ac_fail(AC_ERR_NOMEM, "job pool: cannot start worker %d: %s", w, strerror(e));
        }
        p->n_workers++;
    }
    *out = p;
    return AC_OK;
}

void ac_job_pool_submit(ac_job_pool *p, void *job) {
    pthread_mutex_lock(&p->mu);
    while (p->submitted - p->taken >= p->cap) pthread_cond_wait(&p->room, &p->mu);
    job_slot *s = &p->ring[p->submitted++ % p->cap];
    *s = (job_slot){job, AC_OK, 0};
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
}

int ac_job_pool_lost(const ac_job_pool *p) {
    pthread_mutex_lock((pthread_mutex_t *)&p->mu);
    int n = p->lost;
    pthread_mutex_unlock((pthread_mutex_t *)&p->mu);
    return n;
}

int ac_job_pool_inflight(const ac_job_pool *p) {
    pthread_mutex_lock((pthread_mutex_t *)&p->mu);
    int n = (int)(p->submitted - p->taken);
    pthread_mutex_unlock((pthread_mutex_t *)&p->mu);
    return n;
}

static void *job_take(ac_job_pool *p, ac_status *st, int block) {
    pthread_mutex_lock(&p->mu);
    void *job = NULL;
    if (p->taken < p->submitted) {
        job_slot *s = &p->ring[p->taken % p->cap];
        while (block && !s->done) pthread_cond_wait(&p->done, &p->mu);
        if (s->done) {
            job = s->job;
            *st = s->st;
            s->done = 0;
            p->taken++;
            pthread_cond_broadcast(&p->room);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return job;
}

void *ac_job_pool_next(ac_job_pool *p, ac_status *st) { return job_take(p, st, 1); }
void *ac_job_pool_try_next(ac_job_pool *p, ac_status *st) { return job_take(p, st, 0); }

void ac_job_pool_stop(ac_job_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int w = 0; w < p->n_workers; w++) pthread_join(p->threads[w], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->room);
    free(p->ring);
    free(p->threads);
    free(p->retry);
    free(p);
}

void ac_decode_tune_allocator(void) {
#ifdef __GLIBC__
    // Each file is decoded into a fresh buffer of a few MB that lives until its rows are written, freed by another
    // thread. With glibc's defaults such buffers were mmapped, or trimmed back to the kernel, and every page faulted
    // in again per file: at 2,000+ WAV files/s per core the faults cost more than the decoding (a 1-thread
    // `caption --check` ran at ~1,070 files/s beside the decode pool's ~3,000). Chunks up to 32 MB (a 30 s clip is
    // 3.8 MB) come from the heap, and up to 512 MB of freed heap is kept for reuse.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
}
