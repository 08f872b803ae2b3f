// Status names and the thread-local last-error message (see status.h).
#include "status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char g_err[1024];

const char *ac_status_name(ac_status s) {
    switch (s) {
    case AC_OK: return "ok";
    case AC_ERR_INVALID_ARG: return "invalid_argument";
    case AC_ERR_IO: return "io_error";
    case AC_ERR_FORMAT: return "format_error";
    case AC_ERR_AUDIO: return "audio_error";
    case AC_ERR_NOMEM: return "out_of_memory";
    case AC_ERR_CUDA: return "cuda_error";
    case AC_ERR_INTERNAL: return "internal_error";
    }
    return "unknown_status";
}

const char *ac_last_error(void) { return g_err; }

void ac_clear_error(void) { g_err[0] = '\0'; }

ac_status ac_fail(ac_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return s;
}
