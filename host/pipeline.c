// Decode pool (see pipeline.h). Slot i % window holds input i between its decoding and its taking; a thread
// claims the next input only while fewer than `window` inputs are ahead of the consumer, so slots are never
// reused before they are taken.
#include "pipeline.h"
#include "status.h"

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
    int next;   // next input to claim
    int taken;  // inputs taken by the consumer
    int stop;
    slot *slots;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t can_claim, ready;
};

static void decode_one(const char *path, int sample_rate, ac_decoded *d) {
    memset(d, 0, sizeof *d);
    ac_audio a;
    ac_clear_error();
    d->st = ac_audio_load(path, &a, NULL);
    if (!d->st) {
        d->duration_s = (double)a.n_frames / a.sample_rate;
        d->st = ac_audio_to_model_rate(&a, sample_rate, &d->x, &d->n);
        ac_audio_free(&a);
    }
    if (d->st) snprintf(d->error, sizeof d->error, "%s", ac_last_error());
}

static void *worker(void *arg) {
    ac_decode_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->next < p->n && p->next >= p->taken + p->window) pthread_cond_wait(&p->can_claim, &p->mu);
        if (p->stop || p->next >= p->n) break;
        const int i = p->next++;
        pthread_mutex_unlock(&p->mu);
        ac_decoded d;
        decode_one(p->paths[i], p->sample_rate, &d);
        pthread_mutex_lock(&p->mu);
        slot *s = &p->slots[i % p->window];
        s->d = d;
        s->seq = i;
        pthread_cond_broadcast(&p->ready);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ac_status ac_decode_pool_start(char *const *paths, int n, int sample_rate, int n_threads, int window,
                               ac_decode_pool **out) {
    *out = NULL;
    if (n < 0 || n_threads < 1 || window < 1 || sample_rate <= 0)
        return ac_fail(AC_ERR_INVALID_ARG, "decode pool: bad arguments (n %d, threads %d, window %d)", n, n_threads, window);
    ac_decode_pool *p = calloc(1, sizeof *p);
    if (!p) return ac_fail(AC_ERR_NOMEM, "decode pool: out of memory");
    p->paths = paths;
    p->n = n;
    p->sample_rate = sample_rate;
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
    pthread_mutex_lock(&p->mu);
    slot *s = &p->slots[i % p->window];
    while (s->seq != i) pthread_cond_wait(&p->ready, &p->mu);
    *out = s->d;
    memset(&s->d, 0, sizeof s->d);
    s->seq = -1;
    p->taken = i + 1;
    pthread_cond_broadcast(&p->can_claim);
    pthread_mutex_unlock(&p->mu);
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
