// Shapes of the ConvNeXt encoder for a packed batch, in plain C (header-only, so the CPU tests check it too).
// Mirrors host/model.c: stem conv (kt x kf, stride = kernel, padding (pt, pf)), then three 2x2/2 downsamples
// (conette convnext.py:207-217); frame_embs_lens as in model.c frame_len (convnext.py:302-315 and the DCASE2024
// variant). Stage index s: 0 = log-mel frames, 1 = stem, 2..4 = after downsample_layers[1..3].
// A packed batch stores clip k's frames of stage s at rows [off[s][k], off[s][k+1]) of a (frames, F_s) grid,
// i.e. tokens [off[s][k] * F_s, off[s][k+1] * F_s) of the channels-last (tokens, C_s) activation.
#ifndef AC_ENCODER_PLAN_H
#define AC_ENCODER_PLAN_H

#include <math.h>
#include <stdint.h>

#include "ac.h"
#include "model_file.h"

#define AC_ENC_STAGES 5

static inline int ac_enc_patch_out(int n, int k, int pad) { return (n + 2 * pad - k) / k + 1; }

// Frames (T) and frequency bins (F) per stage for a clip of n_samples at the model rate; 0 frames where the
// clip is too short for that stage (it then fails ac_enc_min_samples).
static inline void ac_enc_stage_dims(const ac_model_config *c, int64_t n_samples, int T[AC_ENC_STAGES],
                                     int F[AC_ENC_STAGES]) {
    int t = (int)(n_samples / c->frontend.hop + 1), f = c->frontend.n_mels;  // ac_frontend_n_frames
    T[0] = t;
    F[0] = f;
    t = ac_enc_patch_out(t, c->encoder.stem_kernel[0], c->encoder.stem_padding[0]);
    f = ac_enc_patch_out(f, c->encoder.stem_kernel[1], c->encoder.stem_padding[1]);
    T[1] = t;
    F[1] = f;
    for (int s = 2; s < AC_ENC_STAGES; s++) {
        T[s] = t = t < 2 ? 0 : ac_enc_patch_out(t, 2, 0);
        F[s] = f = f < 2 ? 0 : ac_enc_patch_out(f, 2, 0);
    }
}

// ac_model_min_samples without a CPU model: the reflect padding needs n_fft/2 + 1 samples, and every stage at
// least one frame (same search, same step as host/model.c).
static inline int64_t ac_enc_min_samples(const ac_model_config *c) {
    int64_t n = c->frontend.n_fft / 2 + 1;
    const int step = c->frontend.hop / 4 > 0 ? c->frontend.hop / 4 : 1;
    for (;; n += step) {
        int T[AC_ENC_STAGES], F[AC_ENC_STAGES];
        ac_enc_stage_dims(c, n, T, F);
        if (T[AC_ENC_STAGES - 1] >= 1) return n;
    }
}

// The reference's frame_embs_lens at batch size 1 (n samples, Tp frames after the encoder): host/model.c.
static inline int ac_enc_frame_len(const ac_model_config *c, int64_t n, int Tp) {
    float len;
    if (c->encoder.frame_len_rule == AC_FRAME_LEN_CONETTE) {
        int64_t red = n / Tp;
        len = (float)n / (float)red;
    } else {
        len = (float)n * (float)((double)Tp / (double)n);
    }
    int r = (int)nearbyintf(len);
    return r < 1 ? 1 : r > Tp ? Tp : r;
}

// Frame offsets of a packed batch: off[s * (n + 1) + k] for stage s and clip k (k = n: the total). T holds
// (n, AC_ENC_STAGES) frame counts. Returns 0, or -1 when a total would overflow an int.
static inline int ac_enc_offsets(int n, const int *T, int *off) {
    for (int s = 0; s < AC_ENC_STAGES; s++) {
        int64_t o = 0;
        for (int k = 0; k < n; k++) {
            off[s * (n + 1) + k] = (int)o;
            o += T[k * AC_ENC_STAGES + s];
            if (o > 0x7fffffff) return -1;
        }
        off[s * (n + 1) + n] = (int)o;
    }
    return 0;
}

#endif
