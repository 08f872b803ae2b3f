// The device beam search's kernels (beam_select, beam_compact, gather_rows, beam_init) and their helpers; included
// by kernels/beam_search.cu (see there for what each computes and the upstream lines) and by
// tests/emu/beam_search_emu.cpp, which runs this same code on the CPU (a host thread per CUDA thread) against
// host/beam.c. Needs float.h/limits.h/math.h, model.h (AC_MAX_BEAM) and CUDA (or the emulator's stand-ins) before it.
#pragma once

#define BEAM_THREADS 256

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
            int v = (int)threadIdx.x >= o ? scan[threadIdx.x - o] : 0;
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
