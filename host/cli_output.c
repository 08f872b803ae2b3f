// Output helpers of `audiocap caption` (see cli_output.h). Subtitle timing follows the SubRip and WebVTT specs
// (https://www.w3.org/TR/webvtt1/#webvtt-timestamp): hours, minutes, seconds, milliseconds, rounded to the ms.
#include "cli_output.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void out_csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int out_emit(int fd, const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            return 1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

void out_timestamp(FILE *f, double t, char sep) {
    long long ms = llround(t * 1000.0);
    if (ms < 0) ms = 0;
    fprintf(f, "%02lld:%02lld:%02lld%c%03lld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, sep, ms % 1000);
}

void out_cue(FILE *f, int vtt, int number, double start_s, double end_s, const char *text) {
    if (!vtt) fprintf(f, "%d\n", number);
    out_timestamp(f, start_s, vtt ? '.' : ',');
    fputs(" --> ", f);
    out_timestamp(f, end_s, vtt ? '.' : ',');
    fprintf(f, "\n%s\n\n", text);
}

int out_write_atomic(const char *path, const char *data, size_t len) {
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 5);
    if (!tmp) return 1;
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    int bad = fd < 0;
    while (!bad && len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) bad = 1;
        else {
            data += w;
            len -= (size_t)w;
        }
    }
    if (fd >= 0 && close(fd) != 0) bad = 1;
    if (!bad && rename(tmp, path) != 0) bad = 1;
    if (bad && fd >= 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
    }
    free(tmp);
    return bad;
}
