#!/usr/bin/env bash
# Regenerates the committed test audio in tests/data/audio/ with sox and espeak-ng (Debian packages
# `sox libsox-fmt-all espeak-ng`). The goldens in tests/data/golden/ are computed from these exact files by
# tools/make_goldens.py, so rerun that script after this one. Files are small on purpose (about 0.6 MB in all).
# Formats that need no golden (Ogg Vorbis, Opus, MP3, a 30-minute file, broken files) are written at test
# time by tests/test_audio.c through libsndfile.
set -euo pipefail
cd "$(dirname "$0")/.."
out=tests/data/audio
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Speech: the caption the CoNeTTE README gives for its sample, spoken.
espeak-ng -s 150 -w "$tmp/speech.wav" "rain is pouring down and people are talking in the background"
# README example: speech over brown noise (rain-like), 44.1 kHz mono FLAC, 3 s.
sox -R "$tmp/speech.wav" -r 44100 "$tmp/speech44.wav" pad 0 3 trim 0 3
sox -R -r 44100 -c 1 -n "$tmp/noise44.wav" synth 3 brownnoise vol 0.25
sox -R -m "$tmp/speech44.wav" "$tmp/noise44.wav" -b 16 "$out/example.flac"
# 16 kHz mono 16-bit speech, 1.5 s.
sox -R "$tmp/speech.wav" -r 16000 -b 16 "$out/speech_16k_mono.wav" trim 0.2 1.5
# 44.1 kHz stereo 24-bit FLAC: left a log sweep to 20 kHz, right a 1 kHz tone plus white noise, 0.5 s.
sox -R -r 44100 -c 1 -n "$tmp/l.wav" synth 0.5 sine 50-20000 vol 0.8
sox -R -r 44100 -c 1 -n "$tmp/r.wav" synth 0.5 sine 1000 synth 0.5 whitenoise amod 0.1 vol 0.5
sox -R -M "$tmp/l.wav" "$tmp/r.wav" -b 24 "$out/chirp_44k1_stereo_s24.flac"
# 22.05 kHz unsigned 8-bit tones (two sines), 1 s.
sox -R -r 22050 -c 1 -n -b 8 -e unsigned-integer "$out/tones_22k05_mono_u8.wav" synth 1 sine 440 sine 3000 remix 1 vol 0.9
# 48 kHz 6-channel 32-bit float: a different noise/tone per channel, 0.1 s.
sox -R -r 48000 -c 6 -n -b 32 -e floating-point "$out/noise_48k_6ch_f32.wav" \
    synth 0.1 whitenoise pinknoise sine 100 sine 5000 brownnoise sine 12000 vol 0.6
# 96 kHz stereo 32-bit integer sweep up to 45 kHz (above the 16 kHz Nyquist of the model rate), 0.15 s.
sox -R -r 96000 -c 2 -n -b 32 -e signed-integer "$out/chirp_96k_stereo_s32.wav" synth 0.15 sine 100-45000 sine 30000 vol 0.7
# 8 kHz 16-bit clipped sine: a 300 Hz tone at twice full scale, hard-clipped by sox, 1 s.
sox -R -r 8000 -c 1 -n -b 16 "$out/clipped_8k_mono.wav" synth 1 sine 300 vol 2.0 2>/dev/null
# Digital silence at the model rate: every log-mel bin sits on the 1e-10 floor (-100 dB), 0.3 s.
sox -R -r 32000 -c 1 -n -b 16 "$out/silence_32k_mono.wav" trim 0 0.3
# Shorter than one 1024-sample STFT window (700 samples at 32 kHz), but long enough for reflect padding.
sox -R -r 32000 -c 1 -n -b 16 "$out/short_32k_mono.wav" synth 700s sine 2000 vol 0.5
# Too short even for reflect padding (300 samples <= n_fft/2): the reference raises, we return an error.
sox -R -r 32000 -c 1 -n -b 16 "$out/tiny_32k_mono.wav" synth 300s sine 2000 vol 0.5
# 44.1 kHz 64-bit float white noise, 0.05 s.
sox -R -r 44100 -c 1 -n -b 64 -e floating-point "$out/noise_44k1_mono_f64.wav" synth 0.05 whitenoise vol 0.4

ls -l "$out"
