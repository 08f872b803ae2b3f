// EXPECT for the stand-in runtime's own tests (emu_streams_test, emu_devices_test): counts checks and failures
// and prints each failure with its line. (tests/testutil.h needs cJSON and the golden data; these need neither.)
#ifndef EMU_CHECK_H
#define EMU_CHECK_H

#include <stdio.h>

static int failures, checks;
#define EXPECT(cond, ...)                                                                                              \
    do {                                                                                                               \
        checks++;                                                                                                      \
        if (!(cond)) {                                                                                                 \
            failures++;                                                                                                \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                                \
            printf(__VA_ARGS__);                                                                                       \
            printf("\n");                                                                                              \
        }                                                                                                              \
    } while (0)

#endif
