// Output formats of `audiocap caption` (host/cli_caption.c): CSV quoting, subtitle cues (SRT, WebVTT), atomic
// per-file writes, and the one-write-per-row append that makes killed runs resumable.
#ifndef AC_CLI_OUTPUT_H
#define AC_CLI_OUTPUT_H

#include <stdio.h>

// RFC 4180: quote a field that contains a comma, a quote or a line break (quotes doubled inside).
void out_csv_field(FILE *f, const char *s);
// Writes `s` with one write(2) (continued only after a partial write): 0 on success, else errno is set.
int out_emit(int fd, const char *s);
// HH:MM:SS<sep>mmm, rounded to the millisecond.
void out_timestamp(FILE *f, double t, char sep);
// One subtitle cue. srt: "N\nHH:MM:SS,mmm --> HH:MM:SS,mmm\ntext\n\n"; vtt: the same with '.' and no number
// (the "WEBVTT\n\n" header is the caller's).
void out_cue(FILE *f, int vtt, int number, double start_s, double end_s, const char *text);
// Writes len bytes to path through path.tmp + rename: a reader never sees half a file. 0 on success.
int out_write_atomic(const char *path, const char *data, size_t len);

#endif
