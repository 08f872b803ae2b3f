// ac_gpu_caption_clips: the device encoder over the whole batch, then the device decoder + beam search over the
// clips that encoded, then detokenization on the host; mirrors ac_caption_clips (host/model.c) step for step,
// including its per-clip error for clips too short for the encoder.
#include "common.cuh"
#include "gpu_caption.h"
#include "../host/gpu_api.h"  // the C facade: its prototypes must match these definitions
#include "gpu_decoder.h"
#include "gpu_encoder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// x: host clips (d_pcm NULL), or d_pcm: the clips packed on the device as `kind` (ac_gpu_encode_resident)
static ac_status caption(ac_gpu_model *g, int n, const float *const *x, ac_pcm_kind kind, const void *d_pcm,
                         const int64_t *n_samples, const ac_decode_params *p, ac_caption *out,
                         ac_gpu_caption_stats *stats) {
    if (stats) memset(stats, 0, sizeof *stats);
    if (n < 0 || (n > 0 && ((!x && !d_pcm) || !n_samples || !out)))
        return ac_fail(AC_ERR_INVALID_ARG, "gpu caption: %d clips, x %p, PCM %p, out %p", n, (const void *)x, d_pcm,
                       (void *)out);
    if (n == 0) return AC_OK;
    ac_status st = ac_gpu_model_use(g);  // before the events below are made: they belong to the current device
    if (st) return st;
    const ac_model_config *c = ac_gpu_model_config(g);
    int64_t n_forbid = 0;
    const uint8_t *forbid = ac_gpu_host_forbid_mask(g, &n_forbid);
    if (forbid && n_forbid != c->vocab_size)
        return ac_fail(AC_ERR_FORMAT, "gpu caption: repetition mask of %lld entries for %d tokens", (long long)n_forbid,
                       c->vocab_size);
    ac_beam_params bp;
    int bos = 0;
    st = ac_gpu_resolve_params(c, p, forbid, &bp, &bos);
    if (st) return st;
    for (int i = 0; i < n; i++) memset(&out[i], 0, sizeof out[i]);

    int64_t *off = (int64_t *)malloc(sizeof(int64_t) * n), *koff = (int64_t *)malloc(sizeof(int64_t) * n);
    int *nf = (int *)malloc(sizeof(int) * n), *ml = (int *)malloc(sizeof(int) * n);
    int *knf = (int *)malloc(sizeof(int) * n), *kml = (int *)malloc(sizeof(int) * n);
    int *idx = (int *)malloc(sizeof(int) * n), *bos_ids = (int *)malloc(sizeof(int) * n);
    ac_status *cs = (ac_status *)malloc(sizeof(ac_status) * n);
    ac_caption *sub = (ac_caption *)malloc(sizeof(ac_caption) * n);
    cudaEvent_t ev[3] = {NULL, NULL, NULL};
    const float *mem = NULL;
    int k = 0;
    cudaStream_t stream = ac_gpu_stream(g);
    if (!off || !koff || !nf || !ml || !knf || !kml || !idx || !bos_ids || !cs || !sub) {
        st = ac_fail(AC_ERR_NOMEM, "gpu caption: out of memory for %d clips", n);
        goto done;
    }
    for (int i = 0; i < 3; i++) {
        cudaError_t e = cudaEventCreate(&ev[i]);
        if (e != cudaSuccess) {
            st = ac_fail(AC_ERR_CUDA, "gpu caption: cudaEventCreate: %s", cudaGetErrorString(e));
            goto done;
        }
    }
    if (cudaEventRecord(ev[0], stream) != cudaSuccess) {
        st = ac_fail(AC_ERR_CUDA, "gpu caption: cudaEventRecord failed");
        goto done;
    }
    if ((st = d_pcm ? ac_gpu_encode_resident(g, n, kind, d_pcm, n_samples, &mem, off, nf, ml, cs)
                    : ac_gpu_encode(g, n, x, n_samples, &mem, off, nf, ml, cs)))
        goto done;
    if (cudaEventRecord(ev[1], stream) != cudaSuccess) {
        st = ac_fail(AC_ERR_CUDA, "gpu caption: cudaEventRecord failed");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (cs[i] != AC_OK) {
            const int64_t mn = ac_gpu_encoder_min_samples(g);
            const int sr = c->frontend.sample_rate;
            out[i].status = cs[i];
            if (cs[i] == AC_ERR_AUDIO)
                snprintf(out[i].error, sizeof out[i].error,
                         "too short for the encoder: %lld samples at %d Hz (%.3f s); the model needs at least %lld "
                         "(%.3f s)",
                         (long long)n_samples[i], sr, (double)n_samples[i] / sr, (long long)mn, (double)mn / sr);
            else
                snprintf(out[i].error, sizeof out[i].error, "encoder: %s", ac_status_name(cs[i]));
            continue;
        }
        out[i].n_frames = nf[i];
        out[i].mem_len = ml[i];
        koff[k] = off[i];
        knf[k] = nf[i];
        kml[k] = ml[i];
        bos_ids[k] = bos;
        idx[k++] = i;
    }
    if (k > 0) {
        ac_gpu_decode_stats ds;
        // the decoder synchronises before it returns: ev[2] right after it ends the decoder's time
        if ((st = ac_gpu_decode(g, k, mem, koff, knf, kml, bos_ids, &bp, sub, &ds))) goto done;
        if (stats) {
            stats->steps = ds.steps;
            stats->decoder_enqueue_ms = ds.enqueue_ms;
            stats->decoder_graphs = ds.graphs;
            stats->decoder_graph_fallback = ds.graph_fallback;
        }
        if (cudaEventRecord(ev[2], stream) != cudaSuccess) {
            st = ac_fail(AC_ERR_CUDA, "gpu caption: cudaEventRecord failed");
            goto done;
        }
        for (int j = 0; j < k; j++) ac_caption_set_beams(c, &sub[j], &out[idx[j]]);
    }
    if (stats) {
        float e_ms = 0, d_ms = 0;
        cudaError_t e = k > 0 ? cudaSuccess : cudaEventRecord(ev[2], stream);
        if (e == cudaSuccess) e = cudaEventSynchronize(ev[2]);
        if (e == cudaSuccess) e = cudaEventElapsedTime(&e_ms, ev[0], ev[1]);
        if (e == cudaSuccess) e = cudaEventElapsedTime(&d_ms, ev[1], ev[2]);
        if (e != cudaSuccess) {
            st = ac_fail(AC_ERR_CUDA, "gpu caption: timing events: %s", cudaGetErrorString(e));
            goto done;
        }
        stats->encoder_ms = e_ms;
        stats->decoder_ms = d_ms;
    }
done:
    for (int i = 0; i < 3; i++)
        if (ev[i]) cudaEventDestroy(ev[i]);
    free(off);
    free(koff);
    free(nf);
    free(ml);
    free(knf);
    free(kml);
    free(idx);
    free(bos_ids);
    free(cs);
    free(sub);
    return st;
}

extern "C" ac_status ac_gpu_caption_clips_ex(ac_gpu_model *g, int n, const float *const *x, const int64_t *n_samples,
                                             const ac_decode_params *p, ac_caption *out, ac_gpu_caption_stats *stats) {
    return caption(g, n, x, AC_PCM_F32, NULL, n_samples, p, out, stats);
}

extern "C" ac_status ac_gpu_caption_resident(ac_gpu_model *g, int n, ac_pcm_kind kind, const void *d_pcm,
                                             const int64_t *n_samples, const ac_decode_params *p, ac_caption *out,
                                             ac_gpu_caption_stats *stats) {
    if (n > 0 && !d_pcm) return ac_fail(AC_ERR_INVALID_ARG, "gpu caption: NULL device PCM for %d clips", n);
    return caption(g, n, NULL, kind, d_pcm, n_samples, p, out, stats);
}

extern "C" ac_status ac_gpu_caption_clips(ac_gpu_model *g, int n, const float *const *x, const int64_t *n_samples,
                                          const ac_decode_params *p, ac_caption *out) {
    return ac_gpu_caption_clips_ex(g, n, x, n_samples, p, out, NULL);
}
