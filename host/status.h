// Internal: recording a failure. Library functions return `ac_fail(status, fmt, ...)`: the message names the
// file or object, the reason, and (after "hint:") the likely fix. Thread-local, so worker threads don't race.
#ifndef AC_STATUS_H
#define AC_STATUS_H

#include "ac.h"

#if defined(__GNUC__)
#define AC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AC_PRINTF(a, b)
#endif

#ifdef __cplusplus
extern "C" {
#endif
ac_status ac_fail(ac_status s, const char *fmt, ...) AC_PRINTF(2, 3);
void ac_clear_error(void);
#ifdef __cplusplus
}
#endif

#endif
