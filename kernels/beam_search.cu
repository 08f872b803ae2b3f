// Beam search on the device (see beam_search.h), the decisions of host/beam.c exactly:
//   beam_select   one block per clip: EOS ban before min_pred_size and the content-word repetition ban
//                 (beam.py:129-156), log_softmax in float32 with the sum of exponentials in double like the
//                 host, the running sums, top-k over (row, token) with k = live rows (beam_size at step 0, where
//                 only row 0 is expanded: beam.py:230-269), ties to the lower flat index; then the bookkeeping
//                 of finished hypotheses into the slots named by the live labels (beam.py:179-203).
//   beam_compact  one block: rows of the next step, clip by clip (an exclusive scan over the live counts).
//   gather_rows   prefixes (and the decoder's cache indirection) follow their rows.
// logits: (max_rows, V) row-major; prefix: (max_rows, max_pred_size + 1); per clip-slot arrays: (n_clips, K).
#include "beam_search.h"
#include "common.cuh"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "beam_search_kernel.cuh"

struct ac_gpu_beam {
    ac_gpu_beam_params p;
    cudaStream_t stream;
    int max_rows, stride;
    uint8_t *forbid;  // (V) or NULL
    int *bos;         // (n_clips)
    int *n_live, *row_off, *labels;
    int *keep_src, *keep_tok;
    float *keep_sum;
    int *n_rows, *row_clip, *tokens, *src_row;
    float *sums;
    int *prefix[2];
    int cur;  // prefix[cur] holds the current prefixes
    int *out_tok, *out_len, *out_best;
    float *out_score;
};

extern "C" ac_status ac_gpu_gather_rows(const int *src, int *dst, int stride, int n_cols, const int *src_row,
                                        const int *last, const int *n_rows, int max_rows, cudaStream_t stream) {
    if (!src || !dst || !src_row || !n_rows || max_rows < 0 || n_cols < 0 || n_cols + (last ? 1 : 0) > stride)
        return ac_fail(AC_ERR_INVALID_ARG, "gather rows: %d columns (+%d) in a stride of %d, %d rows", n_cols,
                       last ? 1 : 0, stride, max_rows);
    if (max_rows == 0) return AC_OK;
    gather_rows_kernel<<<max_rows, 64, 0, stream>>>(src, dst, stride, n_cols, src_row, last, n_rows);
    KERNEL_CHECK();
    return AC_OK;
}

extern "C" void ac_gpu_beam_free(ac_gpu_beam *b) {
    if (!b) return;
    void *ptrs[] = {b->forbid,  b->bos,     b->n_live,   b->row_off,  b->labels,    b->keep_src,
                    b->keep_tok, b->keep_sum, b->n_rows, b->row_clip, b->tokens,    b->src_row,
                    b->sums,    b->prefix[0], b->prefix[1], b->out_tok, b->out_len, b->out_best,
                    b->out_score};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) cudaFree(ptrs[i]);
    free(b);
}

template <typename T>
static ac_status dalloc(T **p, size_t n) {
    CUDA_CHECK(cudaMalloc((void **)p, sizeof(T) * (n ? n : 1)));
    return AC_OK;
}

extern "C" ac_status ac_gpu_beam_create(const ac_gpu_beam_params *p, cudaStream_t stream, ac_gpu_beam **out) {
    *out = NULL;
    if (p->n_clips < 1 || p->beam_size < 1 || p->beam_size > AC_MAX_BEAM || p->max_pred_size < 1 ||
        p->max_pred_size > AC_MAX_PRED - 1 || p->min_pred_size < 0 || p->vocab_size < p->beam_size || p->eos_id < 0 ||
        p->eos_id >= p->vocab_size)
        return ac_fail(AC_ERR_INVALID_ARG,
                       "gpu beam: %d clips, beam %d (1..%d, <= vocabulary), max length %d (1..%d), min length %d, eos %d of %d tokens",
                       p->n_clips, p->beam_size, AC_MAX_BEAM, p->max_pred_size, AC_MAX_PRED - 1, p->min_pred_size,
                       p->eos_id, p->vocab_size);
    if ((int64_t)p->n_clips * p->beam_size * p->vocab_size > INT32_MAX / 2 || p->beam_size * p->vocab_size < 0)
        return ac_fail(AC_ERR_INVALID_ARG, "gpu beam: %d clips x beam %d x %d tokens overflow the index range",
                       p->n_clips, p->beam_size, p->vocab_size);
    ac_gpu_beam *b = (ac_gpu_beam *)calloc(1, sizeof *b);
    if (!b) return ac_fail(AC_ERR_NOMEM, "gpu beam: out of memory");
    b->p = *p;
    b->p.forbid_rep_mask = NULL;
    b->stream = stream;
    const int n = p->n_clips, K = p->beam_size;
    b->max_rows = n * K;
    b->stride = p->max_pred_size + 1;
    const size_t R = (size_t)b->max_rows, NK = (size_t)n * K;
    ac_status st = AC_OK;
    if (!st && p->forbid_rep_mask) st = dalloc(&b->forbid, (size_t)p->vocab_size);
    if (!st) st = dalloc(&b->bos, n);
    if (!st) st = dalloc(&b->n_live, n);
    if (!st) st = dalloc(&b->row_off, n);
    if (!st) st = dalloc(&b->labels, NK);
    if (!st) st = dalloc(&b->keep_src, NK);
    if (!st) st = dalloc(&b->keep_tok, NK);
    if (!st) st = dalloc(&b->keep_sum, NK);
    if (!st) st = dalloc(&b->n_rows, 1);
    if (!st) st = dalloc(&b->row_clip, R);
    if (!st) st = dalloc(&b->tokens, R);
    if (!st) st = dalloc(&b->src_row, R);
    if (!st) st = dalloc(&b->sums, R);
    if (!st) st = dalloc(&b->prefix[0], R * b->stride);
    if (!st) st = dalloc(&b->prefix[1], R * b->stride);
    if (!st) st = dalloc(&b->out_tok, NK * p->max_pred_size);
    if (!st) st = dalloc(&b->out_len, NK);
    if (!st) st = dalloc(&b->out_best, n);
    if (!st) st = dalloc(&b->out_score, NK);
    if (!st && p->forbid_rep_mask) {
        // on the search's own stream: a legacy-stream cudaMemcpy from pageable memory may return before its DMA
        // lands, and a non-blocking stream would not wait for it
        cudaError_t e = cudaMemcpyAsync(b->forbid, p->forbid_rep_mask, (size_t)p->vocab_size, cudaMemcpyHostToDevice,
                                        stream);
        if (e != cudaSuccess)
            st = ac_fail(AC_ERR_CUDA, "gpu beam: copying the repetition mask: %s", cudaGetErrorString(e));
    }
    if (st) {
        ac_gpu_beam_free(b);
        return st;
    }
    *out = b;
    return AC_OK;
}

extern "C" ac_status ac_gpu_beam_init(ac_gpu_beam *b, const int *bos_ids) {
    const int n = b->p.n_clips;
    for (int c = 0; c < n; c++)
        if (bos_ids[c] < 0 || bos_ids[c] >= b->p.vocab_size)
            return ac_fail(AC_ERR_INVALID_ARG, "gpu beam: clip %d starts with token %d of %d", c, bos_ids[c],
                           b->p.vocab_size);
    // pageable source: the copy has read it when the call returns
    CUDA_CHECK(cudaMemcpyAsync(b->bos, bos_ids, sizeof(int) * n, cudaMemcpyHostToDevice, b->stream));
    b->cur = 0;
    beam_init_kernel<<<CEIL_DIV(n, 128), 128, 0, b->stream>>>(n, b->p.beam_size, b->stride, b->bos, b->n_live,
                                                              b->row_off, b->labels, b->row_clip, b->tokens, b->sums,
                                                              b->prefix[0], b->out_len, b->out_best, b->out_score,
                                                              b->n_rows);
    KERNEL_CHECK();
    return AC_OK;
}

extern "C" ac_status ac_gpu_beam_step(ac_gpu_beam *b, int step, float *logits) {
    const ac_gpu_beam_params *p = &b->p;
    if (step < 0 || step >= p->max_pred_size || !logits)
        return ac_fail(AC_ERR_INVALID_ARG, "gpu beam: step %d of %d", step, p->max_pred_size);
    select_args a;
    a.K = p->beam_size;
    a.V = p->vocab_size;
    a.maxp = p->max_pred_size;
    a.minp = p->min_pred_size;
    a.eos = p->eos_id;
    a.stride = b->stride;
    a.forbid = b->forbid;
    a.logits = logits;
    a.row_off = b->row_off;
    a.prefix = b->prefix[b->cur];
    a.sums = b->sums;
    a.n_live = b->n_live;
    a.labels = b->labels;
    a.keep_src = b->keep_src;
    a.keep_tok = b->keep_tok;
    a.keep_sum = b->keep_sum;
    a.out_tok = b->out_tok;
    a.out_len = b->out_len;
    a.out_best = b->out_best;
    a.out_score = b->out_score;
    beam_select_kernel<<<p->n_clips, BEAM_THREADS, 0, b->stream>>>(a, step);
    KERNEL_CHECK();
    beam_compact_kernel<<<1, COMPACT_THREADS, 0, b->stream>>>(p->n_clips, p->beam_size, b->n_live, b->row_off,
                                                              b->keep_src, b->keep_tok, b->keep_sum, b->src_row,
                                                              b->tokens, b->sums, b->row_clip, b->n_rows);
    KERNEL_CHECK();
    if (step + 1 < p->max_pred_size) {
        ac_status st = ac_gpu_gather_rows(b->prefix[b->cur], b->prefix[1 - b->cur], b->stride, step + 1, b->src_row,
                                          b->tokens, b->n_rows, b->max_rows, b->stream);
        if (st) return st;
        b->cur = 1 - b->cur;
    }
    return AC_OK;
}

extern "C" ac_gpu_beam_rows ac_gpu_beam_rows_view(const ac_gpu_beam *b) {
    ac_gpu_beam_rows v;
    v.n_rows = b->n_rows;
    v.row_clip = b->row_clip;
    v.tokens = b->tokens;
    v.src_row = b->src_row;
    v.row_off = b->row_off;
    v.n_live = b->n_live;
    v.prefix = b->prefix[b->cur];
    v.max_rows = b->max_rows;
    v.prefix_stride = b->stride;
    return v;
}

extern "C" ac_status ac_gpu_beam_download_rows(const ac_gpu_beam *b, int *n_rows, int *row_clip, int *prefix) {
    // on the search's stream, not the legacy one: see ac_gpu_beam_results
    CUDA_CHECK(cudaMemcpyAsync(n_rows, b->n_rows, sizeof(int), cudaMemcpyDeviceToHost, b->stream));
    CUDA_CHECK(cudaMemcpyAsync(row_clip, b->row_clip, sizeof(int) * b->max_rows, cudaMemcpyDeviceToHost, b->stream));
    CUDA_CHECK(cudaMemcpyAsync(prefix, b->prefix[b->cur], sizeof(int) * (size_t)b->max_rows * b->stride,
                               cudaMemcpyDeviceToHost, b->stream));
    CUDA_CHECK(cudaStreamSynchronize(b->stream));
    return AC_OK;
}

extern "C" ac_status ac_gpu_beam_results(ac_gpu_beam *b, ac_caption *out) {
    const int n = b->p.n_clips, K = b->p.beam_size, maxp = b->p.max_pred_size;
    const size_t NK = (size_t)n * K;
    int *tok = (int *)malloc(sizeof(int) * NK * maxp), *len = (int *)malloc(sizeof(int) * NK);
    int *best = (int *)malloc(sizeof(int) * n);
    float *score = (float *)malloc(sizeof(float) * NK);
    ac_status st = AC_OK;
    cudaError_t e = cudaSuccess;
    if (!tok || !len || !best || !score) {
        st = ac_fail(AC_ERR_NOMEM, "gpu beam: out of memory for the results of %d clips", n);
        goto done;
    }
    // Copies on the search's stream and a wait for that stream alone: a synchronous cudaMemcpy (the legacy
    // stream) synchronises the whole device, which invalidates a CUDA graph another worker is capturing on it
    e = cudaMemcpyAsync(tok, b->out_tok, sizeof(int) * NK * maxp, cudaMemcpyDeviceToHost, b->stream);
    if (e == cudaSuccess) e = cudaMemcpyAsync(len, b->out_len, sizeof(int) * NK, cudaMemcpyDeviceToHost, b->stream);
    if (e == cudaSuccess) e = cudaMemcpyAsync(best, b->out_best, sizeof(int) * n, cudaMemcpyDeviceToHost, b->stream);
    if (e == cudaSuccess)
        e = cudaMemcpyAsync(score, b->out_score, sizeof(float) * NK, cudaMemcpyDeviceToHost, b->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(b->stream);
    if (e != cudaSuccess) {
        st = ac_fail(AC_ERR_CUDA, "gpu beam: reading the results: %s (hint: run with AC_SYNC=1)", cudaGetErrorString(e));
        goto done;
    }
    for (int c = 0; c < n; c++) {
        out[c].n_beams = K;
        out[c].best = best[c];
        for (int j = 0; j < K; j++) {
            ac_hyp *h = &out[c].beams[j];
            const size_t s = (size_t)c * K + j;
            h->n_tokens = len[s];
            h->score = score[s];
            memcpy(h->tokens, tok + s * maxp, sizeof(int) * (size_t)len[s]);
        }
    }
done:
    free(tok);
    free(len);
    free(best);
    free(score);
    return st;
}
