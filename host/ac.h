// audiocap public C API: status codes, audio loading, resampling and the CoNeTTE log-mel front end.
//
// Usage:
//   ac_audio a;  ac_audio_info info;
//   if (ac_audio_load("clip.flac", &a, &info) != AC_OK) { fprintf(stderr, "%s\n", ac_last_error()); ... }
//   float *x32; int64_t n32;
//   ac_audio_to_model_rate(&a, 32000, &x32, &n32);            // torchaudio resample, then channel mean
//   ac_frontend fe;  ac_frontend_init_default(&fe);             // CoNeTTE constants (or from a model file)
//   ac_logmel_ref(&fe, x32, n32, logmel, n_frames);             // (T, 224)
//
// Every function returns an ac_status; on failure ac_last_error() names the file, the reason and a hint.
// Nothing in the library calls exit(). No CUDA types appear here.
#ifndef AC_H
#define AC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AC_VERSION "0.1.0"

typedef enum {
    AC_OK = 0,
    AC_ERR_INVALID_ARG = 1,  // caller error: bad argument or option
    AC_ERR_IO = 2,           // file missing, unreadable, not writable
    AC_ERR_FORMAT = 3,       // not audio, unsupported or corrupt container/codec
    AC_ERR_AUDIO = 4,        // decodable but unusable: empty, truncated, NaN/Inf, absurd rate, too short
    AC_ERR_NOMEM = 5,        // allocation failed (host or device)
    AC_ERR_CUDA = 6,         // CUDA runtime / library failure
    AC_ERR_INTERNAL = 7,     // a bug: please report
} ac_status;

const char *ac_status_name(ac_status s);
// Message of the last failure on this thread ("" if none). Valid until the next failing call on this thread.
const char *ac_last_error(void);

// ---------------------------------------------------------------------------------------------------------
// Audio
// ---------------------------------------------------------------------------------------------------------
#define AC_MIN_SAMPLE_RATE 1000     // below or above these an input rate is called absurd
#define AC_MAX_SAMPLE_RATE 768000
#define AC_MAX_CHANNELS 64
#define AC_MAX_SECONDS (4.0 * 3600.0)  // refuse decoding more than 4 h of audio in one file (memory bound)

typedef struct {
    float *data;         // (channels, n_frames) planar, float32 in [-1, 1] as torchaudio.load normalises
    int64_t n_frames;
    int channels;
    int sample_rate;
} ac_audio;

typedef struct {
    char container[48];  // "WAV", "FLAC", "OGG", "MPEG", ...
    char codec[48];      // "PCM_16", "VORBIS", "OPUS", "MPEG_LAYER_III", ...
    int sample_rate;     // rate of the decoded samples
    int original_rate;   // Opus: rate before encoding (libsndfile decodes at 48 kHz); else = sample_rate
    int channels;
    int64_t n_frames;
} ac_audio_info;

// Decode any file libsndfile reads (WAV/AIFF/FLAC/Ogg Vorbis/Opus/MP3...). Fails with a named reason on a
// missing, empty, truncated, non-audio, zero-length, NaN/Inf-containing or absurd-rate file.
ac_status ac_audio_load(const char *path, ac_audio *out, ac_audio_info *info);
// Same checks on samples already in memory (interleaved (n_frames, channels)); copies them. `name` is used
// in messages.
ac_status ac_audio_from_interleaved(const char *name, const float *interleaved, int64_t n_frames, int channels,
                                    int sample_rate, ac_audio *out);
void ac_audio_free(ac_audio *a);
// Duration from the file's header alone (no decoding), or -1 when the header does not say or the file does not
// open. For planning only: ac_audio_load decides what a file really holds.
double ac_audio_probe_seconds(const char *path);

// ---------------------------------------------------------------------------------------------------------
// Resampling: exact port of torchaudio.functional.resample defaults (sinc_interp_hann, lowpass_filter_width 6,
// rolloff 0.99), float32 kernel as torchaudio builds it for a float32 waveform.
// ---------------------------------------------------------------------------------------------------------
typedef struct ac_resampler ac_resampler;

ac_status ac_resampler_create(int orig_freq, int new_freq, ac_resampler **out);
void ac_resampler_free(ac_resampler *r);
// The same resampler, built once per rate pair and shared (thread-safe; never freed by the caller). NULL when
// it cannot be built or the table (32 pairs) is full: then create one with ac_resampler_create.
const ac_resampler *ac_resampler_shared(int orig_freq, int new_freq);
// The shared resampler for the pair, or, when the table cannot give one, a new one also stored in *own, which
// the caller frees with ac_resampler_free (*own is NULL otherwise).
ac_status ac_resampler_acquire(int orig_freq, int new_freq, const ac_resampler **r, ac_resampler **own);
// Output length exactly as torchaudio computes it (including its float32 rounding of new*len/orig).
int64_t ac_resampler_out_len(const ac_resampler *r, int64_t in_len);
// x: (in_len,) -> y: (ac_resampler_out_len(in_len),). y must not alias x.
void ac_resampler_run(const ac_resampler *r, const float *x, int64_t in_len, float *y);
// Outputs [o0, o1) only, into y[0 .. o1 - o0), with x holding input samples from x0 on: every sample an output in
// the range reads, [lo, hi) of ac_resampler_window clipped to [0, in_len), must be in x. Each output is summed
// exactly as ac_resampler_run sums it, so a stream computed range by range equals the whole run bit for bit;
// while the input's length is not yet known, pass INT64_MAX for in_len and only outputs whose window ends within
// what has been read.
void ac_resampler_run_range(const ac_resampler *r, const float *x, int64_t x0, int64_t in_len, int64_t o0,
                            int64_t o1, float *y);
// The input samples [*lo, *hi) output o reads (before clipping to the input); and a lower bound of lo for every
// output from o on (what a stream may drop below).
void ac_resampler_window(const ac_resampler *r, int64_t o, int64_t *lo, int64_t *hi);
int64_t ac_resampler_first_needed(const ac_resampler *r, int64_t o);
// The first output from o on whose window ends past input sample avail (hi > avail): what a stream that has
// read avail samples can emit is [o, ac_resampler_ready(r, o, avail)). Whole blocks are skipped, not scanned.
int64_t ac_resampler_ready(const ac_resampler *r, int64_t o, int64_t avail);
// How far past an output sample's time its inputs reach, at most, for any pair of rates >= AC_MIN_SAMPLE_RATE:
// output o (phase j, block b) reads padded taps up to center + L, center = j * orig / new + width and
// L = 6 * orig / base (ac_resampler_create keeps |t| < 6), so inputs up to its own position + L + 1, i.e.
// 6 / (0.99 * min(orig_freq, new_freq)) + 1 / orig_freq <= 7.1 ms past its time. So a head of
// T + AC_RESAMPLE_SUPPORT_S seconds gives the whole file's first T seconds of output bit for bit.
#define AC_RESAMPLE_SUPPORT_S 0.02

// A file straight to mono at `rate` (decode -> resample every channel -> average them, as ac_audio_load +
// ac_audio_to_model_rate, bit for bit), streamed in blocks so that memory is the output and a block, not the
// file's decoded channels (a 2 h stereo 44.1 kHz file took ~5 GB that way, beside its 0.9 GB result).
// head_s > 0: only the first head_s seconds are decoded; with AC_RESAMPLE_SUPPORT_S of margin, the output's
// start is the whole file's bit for bit. The rest is not decoded when the header's length is confirmed by
// seeking to the last frame (else it is decoded and dropped), so a cut file is still refused, but NaN/Inf past
// the head are not looked for. *duration_s (may be NULL) is the whole file's. The same errors as ac_audio_load;
// the 4 h limit applies to what is decoded.
ac_status ac_audio_load_mono(const char *path, int rate, double head_s, float **out, int64_t *out_len,
                             double *duration_s);

// Resample every channel to `target_rate`, then average channels (the CoNeTTE preprocessor's order).
// *out is malloc'ed (free() it); *out_len receives its length.
ac_status ac_audio_to_model_rate(const ac_audio *a, int target_rate, float **out, int64_t *out_len);
// The same, but may take a's samples instead of copying them (mono audio already at target_rate): afterwards `a`
// is only good for ac_audio_free.
ac_status ac_audio_to_model_rate_move(ac_audio *a, int target_rate, float **out, int64_t *out_len);

// ---------------------------------------------------------------------------------------------------------
// Log-mel front end (CoNeTTE ConvNeXt: torchlibrosa Spectrogram + LogmelFilterBank, then bn0)
// ---------------------------------------------------------------------------------------------------------
typedef struct ac_stft_plan ac_stft_plan;  // host/ref/ref_logmel.h
typedef struct {
    int sample_rate;  // 32000
    int n_fft;        // 1024 (= win_length)
    int hop;          // 320
    int n_mels;       // 224
    float fmin, fmax; // 50, 14000
    float amin;       // 1e-10
    float bn_eps;     // 1e-5
    // Upstream parameter names (encoder.spectrogram_extractor.stft.conv_real.weight, ...):
    float *conv_real;  // (n_fft/2+1, n_fft) windowed DFT, real part
    float *conv_imag;  // (n_fft/2+1, n_fft) windowed DFT, imaginary part
    float *melW;       // (n_fft/2+1, n_mels) Slaney mel filterbank
    // bn0 (BatchNorm2d over mel bins, eval mode); NULL means "not applied" (raw log-mel)
    float *bn0_weight, *bn0_bias, *bn0_running_mean, *bn0_running_var;  // (n_mels,)
    int owns_buffers;
    ac_stft_plan *stft_plan;  // CPU front end's precomputed matrices (NULL: built per call); always owned
} ac_frontend;

// Build the CoNeTTE constants the way torchlibrosa/librosa do (used until a model file supplies them).
ac_status ac_frontend_init_default(ac_frontend *fe);
void ac_frontend_free(ac_frontend *fe);
// Minimum input length (samples at the model rate) the reference accepts: reflect padding needs > n_fft/2.
int64_t ac_frontend_min_samples(const ac_frontend *fe);
// Number of STFT frames for n samples at the model rate (center=True): floor(n / hop) + 1.
int64_t ac_frontend_n_frames(const ac_frontend *fe, int64_t n_samples);

#ifdef __cplusplus
}
#endif
#endif
