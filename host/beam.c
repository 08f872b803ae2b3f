// Beam search, exactly the reference's rules (conette nn/decoding/beam.py), for n clips sharing one decoder call
// per step. Per clip and step i (0-based index of the token being chosen):
//   - EOS gets -inf while i < min_pred_size; every token already in a row's prefix (the BOS/task token
//     included) whose forbid_rep_mask bit is set gets -inf (beam.py:129-156);
//   - log_softmax over the masked logits; at i = 0 only row 0 is expanded (all rows are equal), else the
//     candidates are the running sums of every live row (beam.py:230-269); top-k over them with k = live rows
//     (beam_size at i = 0): the beam shrinks as hypotheses finish (beam.py:196-203);
//   - new row j continues candidate j's row; a row whose token is EOS, or every row at i = max_pred_size-1,
//     finishes into the slot labelled by the j-th smallest live label (rows keep their positional labels as in
//     beam.py:179-187), with score = sum / (i+1) (beam.py:188-190);
//   - the result is the first slot with the maximum score (torch.max).
// Ties in top-k go to the lower flat index (row-major over (row, token)).
#include "beam.h"
#include "status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int n_live;             // live rows of this clip (contiguous in the global row order)
    int labels[AC_MAX_BEAM];  // their slot labels, ascending
    int done;
} clip_state;

typedef struct {
    float value;
    int index;  // row * V + token, within the clip
} cand;

// a before b in top-k order: higher value first, then lower flat index
static int cand_before(cand a, cand b) { return a.value > b.value || (a.value == b.value && a.index < b.index); }

// Offers one candidate to the running top-k list (sorted); candidates arrive in increasing index order.
static void topk_offer(cand *top, int *n, int k, cand c) {
    if (*n == k && !cand_before(c, top[k - 1])) return;
    int j = *n < k ? (*n)++ : k - 1;
    while (j > 0 && cand_before(c, top[j - 1])) {
        top[j] = top[j - 1];
        j--;
    }
    top[j] = c;
}

// log_softmax of one row in place (float32 like torch; the sum of exponentials in double)
static void log_softmax(float *x, int V) {
    float mx = -INFINITY;
    for (int v = 0; v < V; v++) mx = fmaxf(mx, x[v]);
    double s = 0;
    for (int v = 0; v < V; v++) s += exp((double)x[v] - mx);
    float lse = (float)log(s);
    for (int v = 0; v < V; v++) x[v] = x[v] - mx - lse;
}

ac_status ac_beam_search(const ac_beam_params *p, int n_clips, const int *bos_ids, const ac_logits_source *src,
                         ac_caption *out) {
    const int K = p->beam_size, V = p->vocab_size, maxp = p->max_pred_size;
    if (K < 1 || K > AC_MAX_BEAM || maxp < 1 || maxp > AC_MAX_PRED || p->min_pred_size < 0)
        return ac_fail(AC_ERR_INVALID_ARG, "beam search: beam %d (1..%d), max length %d (1..%d), min length %d", K,
                       AC_MAX_BEAM, maxp, AC_MAX_PRED, p->min_pred_size);
    const int max_rows = n_clips * K;
    ac_status st = AC_OK;
    clip_state *cs = calloc((size_t)n_clips, sizeof *cs);
    int *prefix = malloc(sizeof(int) * (size_t)max_rows * (maxp + 1));      // row-major (row, position)
    int *new_prefix = malloc(sizeof(int) * (size_t)max_rows * (maxp + 1));
    float *sums = calloc((size_t)max_rows, sizeof(float)), *new_sums = malloc(sizeof(float) * max_rows);
    int *row_clip = malloc(sizeof(int) * max_rows), *tokens = malloc(sizeof(int) * max_rows);
    int *src_rows = malloc(sizeof(int) * max_rows), *new_clip = malloc(sizeof(int) * max_rows);
    float *logits = malloc(sizeof(float) * (size_t)max_rows * V);
    cand cands[AC_MAX_BEAM];
    if (!cs || !prefix || !new_prefix || !sums || !new_sums || !row_clip || !tokens || !src_rows || !new_clip ||
        !logits) {
        st = ac_fail(AC_ERR_NOMEM, "beam search: out of memory for %d clips x beam %d x vocabulary %d", n_clips, K, V);
        goto done;
    }
    // Step 0 starts from one row per clip (its beam_size copies would be identical).
    int n_rows = n_clips;
    for (int c = 0; c < n_clips; c++) {
        cs[c].n_live = 1;
        for (int j = 0; j < K; j++) cs[c].labels[j] = j;
        row_clip[c] = c;
        prefix[(size_t)c * (maxp + 1)] = bos_ids[c];
        tokens[c] = bos_ids[c];
        out[c].n_beams = K;
        out[c].best = 0;
        for (int j = 0; j < K; j++) out[c].beams[j].n_tokens = 0;
    }
    for (int i = 0; i < maxp && n_rows > 0; i++) {
        st = src->step(src->ctx, i, n_rows, row_clip, tokens, logits);
        if (st) goto done;
        int r0 = 0, n_new = 0;
        for (int c = 0; c < n_clips; c++) {
            if (cs[c].done) continue;
            const int live = cs[c].n_live;
            for (int r = r0; r < r0 + live; r++) {
                float *lg = logits + (size_t)r * V;
                if (i < p->min_pred_size) lg[p->eos_id] = -INFINITY;
                if (p->forbid_rep_mask)
                    for (int t = 0; t <= i; t++) {
                        int tok = prefix[(size_t)r * (maxp + 1) + t];
                        if (tok >= 0 && tok < V && p->forbid_rep_mask[tok]) lg[tok] = -INFINITY;
                    }
            }
            const int rows_used = i == 0 ? 1 : live;
            const int k = i == 0 ? K : live;
            int nc = 0;
            for (int r = 0; r < rows_used; r++) {
                float *lg = logits + (size_t)(r0 + r) * V;
                log_softmax(lg, V);
                float base = i == 0 ? 0.0f : sums[r0 + r];
                for (int v = 0; v < V; v++) topk_offer(cands, &nc, k, (cand){i == 0 ? lg[v] : base + lg[v], r * V + v});
            }
            int keep_labels[AC_MAX_BEAM], n_keep = 0;
            for (int j = 0; j < k; j++) {
                int prev = cands[j].index / V, tok = cands[j].index % V;
                const int *pp = prefix + (size_t)(r0 + prev) * (maxp + 1);
                int finished = (i < maxp - 1) ? tok == p->eos_id : 1;
                int label = cs[c].labels[j];
                if (finished) {
                    ac_hyp *h = &out[c].beams[label];
                    h->n_tokens = i + 1;
                    for (int t = 0; t < i; t++) h->tokens[t] = pp[t + 1];
                    h->tokens[i] = tok;
                    h->score = cands[j].value / (float)(i + 1);
                } else {
                    int *np = new_prefix + (size_t)n_new * (maxp + 1);
                    memcpy(np, pp, sizeof(int) * (i + 1));
                    np[i + 1] = tok;
                    new_sums[n_new] = cands[j].value;
                    src_rows[n_new] = r0 + prev;
                    new_clip[n_new] = c;
                    tokens[n_new] = tok;
                    n_new++;
                    keep_labels[n_keep++] = label;
                }
            }
            r0 += live;
            cs[c].n_live = n_keep;
            memcpy(cs[c].labels, keep_labels, sizeof(int) * n_keep);
            if (n_keep == 0) {
                cs[c].done = 1;
                int best = 0;
                for (int j = 1; j < K; j++)
                    if (out[c].beams[j].score > out[c].beams[best].score) best = j;
                out[c].best = best;
            }
        }
        if (n_new > 0 && i + 1 < maxp) src->reorder(src->ctx, i, n_new, src_rows);
        int *tp = prefix;
        prefix = new_prefix;
        new_prefix = tp;
        float *ts = sums;
        sums = new_sums;
        new_sums = ts;
        memcpy(row_clip, new_clip, sizeof(int) * n_new);
        n_rows = n_new;
    }
done:
    free(cs);
    free(prefix);
    free(new_prefix);
    free(sums);
    free(new_sums);
    free(row_clip);
    free(tokens);
    free(src_rows);
    free(new_clip);
    free(logits);
    return st;
}
