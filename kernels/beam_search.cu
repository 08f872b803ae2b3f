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

#define BEAM_THREADS 256

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

struct cand {
    float v;
    int i;  // flat index row * V + token within the clip; INT_MAX: none
};

// a before b: higher value first, then lower index (host/beam.c cand_before); "none" after everything
__device__ __forceinline__ bool cand_before(cand a, cand b) {
    if (a.i == INT_MAX) return false;
    if (b.i == INT_MAX) return true;
    return a.v > b.v || (a.v == b.v && a.i < b.i);
}

__device__ __forceinline__ float block_max(float x, float *red) {
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();
    if (l == 0) red[w] = x;
    __syncthreads();
    x = red[0];
    for (int i = 1; i < BEAM_THREADS / 32; i++) x = fmaxf(x, red[i]);
    return x;
}

__device__ __forceinline__ double block_sum_d(double x, double *red) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();
    if (l == 0) red[w] = x;
    __syncthreads();
    x = red[0];
    for (int i = 1; i < BEAM_THREADS / 32; i++) x += red[i];
    return x;
}

__device__ __forceinline__ cand block_best(cand c, cand *red) {
    for (int o = 16; o > 0; o >>= 1) {
        cand d;
        d.v = __shfl_xor_sync(0xffffffffu, c.v, o);
        d.i = __shfl_xor_sync(0xffffffffu, c.i, o);
        if (cand_before(d, c)) c = d;
    }
    const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();
    if (l == 0) red[w] = c;
    __syncthreads();
    c = red[0];
    for (int i = 1; i < BEAM_THREADS / 32; i++)
        if (cand_before(red[i], c)) c = red[i];
    return c;
}

struct select_args {
    int K, V, maxp, minp, eos, stride;
    const uint8_t *forbid;
    float *logits;
    const int *row_off, *prefix;
    const float *sums;
    int *n_live, *labels, *keep_src, *keep_tok;
    float *keep_sum;
    int *out_tok, *out_len, *out_best;
    float *out_score;
};

__global__ void __launch_bounds__(BEAM_THREADS) beam_select_kernel(select_args a, int step) {
    __shared__ float red_f[BEAM_THREADS / 32];
    __shared__ double red_d[BEAM_THREADS / 32];
    __shared__ cand red_c[BEAM_THREADS / 32];
    __shared__ cand sel[AC_MAX_BEAM];
    const int c = blockIdx.x, tid = threadIdx.x, V = a.V, K = a.K;
    const int live = a.n_live[c];
    if (live == 0) return;  // finished clip: the whole block leaves
    const int r0 = a.row_off[c];
    const int rows_used = step == 0 ? 1 : live, k = step == 0 ? K : live;

    // masks, in place (the host masks every live row; only the expanded ones are read)
    for (int ru = 0; ru < rows_used; ru++) {
        float *lg = a.logits + (size_t)(r0 + ru) * V;
        if (tid == 0 && step < a.minp) lg[a.eos] = -INFINITY;
        if (a.forbid)
            for (int t = tid; t <= step; t += BEAM_THREADS) {
                const int tok = a.prefix[(size_t)(r0 + ru) * a.stride + t];
                if (tok >= 0 && tok < V && a.forbid[tok]) lg[tok] = -INFINITY;
            }
    }
    __syncthreads();

    // thread-local top-k over this thread's candidates (sorted, host topk_offer rules)
    cand top[AC_MAX_BEAM];
    int n = 0;
    for (int ru = 0; ru < rows_used; ru++) {
        const float *lg = a.logits + (size_t)(r0 + ru) * V;
        float mx = -INFINITY;
        for (int v = tid; v < V; v += BEAM_THREADS) mx = fmaxf(mx, lg[v]);
        mx = block_max(mx, red_f);
        double s = 0;
        for (int v = tid; v < V; v += BEAM_THREADS) s += exp((double)lg[v] - (double)mx);
        s = block_sum_d(s, red_d);
        const float lse = (float)log(s);
        const float base = step == 0 ? 0.0f : a.sums[r0 + ru];
        for (int v = tid; v < V; v += BEAM_THREADS) {
            const float x = lg[v] - mx - lse;
            cand cd = {step == 0 ? x : base + x, ru * V + v};
            if (n == k && !cand_before(cd, top[k - 1])) continue;
            int j = n < k ? n++ : k - 1;
            while (j > 0 && cand_before(cd, top[j - 1])) {
                top[j] = top[j - 1];
                j--;
            }
            top[j] = cd;
        }
    }
    // merge: k rounds of a block-wide best over the threads' list heads (indices are unique: a total order)
    int pos = 0;
    for (int j = 0; j < k; j++) {
        cand head = pos < n ? top[pos] : cand{-INFINITY, INT_MAX};
        cand best = block_best(head, red_c);
        if (head.i != INT_MAX && head.i == best.i) pos++;
        if (tid == 0) sel[j] = best;
    }
    __syncthreads();
    if (tid != 0) return;

    // bookkeeping (beam.py:179-203): one thread, at most AC_MAX_BEAM candidates
    int n_keep = 0;
    for (int j = 0; j < k; j++) {
        const int prev = sel[j].i / V, tok = sel[j].i % V, src = r0 + prev;
        const int *pp = a.prefix + (size_t)src * a.stride;
        const int finished = step < a.maxp - 1 ? tok == a.eos : 1;
        const int label = a.labels[c * K + j];
        if (finished) {
            const int slot = c * K + label;
            int *ot = a.out_tok + (size_t)slot * a.maxp;
            for (int t = 0; t < step; t++) ot[t] = pp[t + 1];
            ot[step] = tok;
            a.out_len[slot] = step + 1;
            a.out_score[slot] = sel[j].v / (float)(step + 1);
        } else {
            a.keep_src[c * K + n_keep] = src;
            a.keep_tok[c * K + n_keep] = tok;
            a.keep_sum[c * K + n_keep] = sel[j].v;
            a.labels[c * K + n_keep] = label;  // n_keep <= j: that label was read already
            n_keep++;
        }
    }
    a.n_live[c] = n_keep;
    if (n_keep == 0) {
        int best = 0;
        for (int j = 1; j < K; j++)
            if (a.out_score[c * K + j] > a.out_score[c * K + best]) best = j;
        a.out_best[c] = best;
    }
}

#define COMPACT_THREADS 1024

// rows of the next step, clip by clip: exclusive scan of n_live in chunks of the block
__global__ void __launch_bounds__(COMPACT_THREADS)
    beam_compact_kernel(int n_clips, int K, const int *n_live, int *row_off, const int *keep_src, const int *keep_tok,
                        const float *keep_sum, int *src_row, int *tokens, float *sums, int *row_clip, int *n_rows) {
    __shared__ int scan[COMPACT_THREADS];
    __shared__ int carry;
    if (threadIdx.x == 0) carry = 0;
    __syncthreads();
    for (int c0 = 0; c0 < n_clips; c0 += COMPACT_THREADS) {
        const int c = c0 + threadIdx.x;
        const int mine = c < n_clips ? n_live[c] : 0;
        scan[threadIdx.x] = mine;
        __syncthreads();
        for (int o = 1; o < COMPACT_THREADS; o <<= 1) {  // Hillis-Steele inclusive scan
            int v = threadIdx.x >= o ? scan[threadIdx.x - o] : 0;
            __syncthreads();
            scan[threadIdx.x] += v;
            __syncthreads();
        }
        const int off = carry + scan[threadIdx.x] - mine;
        if (c < n_clips) {
            row_off[c] = off;
            for (int j = 0; j < mine; j++) {
                src_row[off + j] = keep_src[c * K + j];
                tokens[off + j] = keep_tok[c * K + j];
                sums[off + j] = keep_sum[c * K + j];
                row_clip[off + j] = c;
            }
        }
        __syncthreads();
        if (threadIdx.x == COMPACT_THREADS - 1) carry += scan[threadIdx.x];
        __syncthreads();
    }
    if (threadIdx.x == 0) *n_rows = carry;
}

__global__ void gather_rows_kernel(const int *src, int *dst, int stride, int n_cols, const int *src_row,
                                   const int *last, const int *n_rows) {
    const int r = blockIdx.x;
    if (r >= *n_rows) return;
    const int *s = src + (size_t)src_row[r] * stride;
    int *d = dst + (size_t)r * stride;
    for (int t = threadIdx.x; t < n_cols; t += blockDim.x) d[t] = s[t];
    if (last && threadIdx.x == 0) d[n_cols] = last[r];
}

__global__ void beam_init_kernel(int n_clips, int K, int stride, const int *bos, int *n_live, int *row_off,
                                 int *labels, int *row_clip, int *tokens, float *sums, int *prefix, int *out_len,
                                 int *out_best, float *out_score, int *n_rows) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c == 0) *n_rows = n_clips;
    if (c >= n_clips) return;
    n_live[c] = 1;
    row_off[c] = c;
    row_clip[c] = c;
    tokens[c] = bos[c];
    sums[c] = 0.0f;
    prefix[(size_t)c * stride] = bos[c];
    out_best[c] = 0;
    for (int j = 0; j < K; j++) {
        labels[c * K + j] = j;
        out_len[c * K + j] = 0;
        out_score[c * K + j] = -INFINITY;
    }
}

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
    CUDA_CHECK(cudaStreamSynchronize(b->stream));
    CUDA_CHECK(cudaMemcpy(n_rows, b->n_rows, sizeof(int), cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(row_clip, b->row_clip, sizeof(int) * b->max_rows, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(prefix, b->prefix[b->cur], sizeof(int) * (size_t)b->max_rows * b->stride,
                          cudaMemcpyDeviceToHost));
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
    e = cudaStreamSynchronize(b->stream);
    if (e == cudaSuccess) e = cudaMemcpy(tok, b->out_tok, sizeof(int) * NK * maxp, cudaMemcpyDeviceToHost);
    if (e == cudaSuccess) e = cudaMemcpy(len, b->out_len, sizeof(int) * NK, cudaMemcpyDeviceToHost);
    if (e == cudaSuccess) e = cudaMemcpy(best, b->out_best, sizeof(int) * n, cudaMemcpyDeviceToHost);
    if (e == cudaSuccess) e = cudaMemcpy(score, b->out_score, sizeof(float) * NK, cudaMemcpyDeviceToHost);
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
