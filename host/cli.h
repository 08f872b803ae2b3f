// Helpers shared by the audiocap subcommands (host/cli.c, host/cli_caption.c).
#ifndef AC_CLI_H
#define AC_CLI_H

#include <stddef.h>

#include "ac.h"

void cli_set_threads(int n);                             // OpenMP + OpenBLAS threads (n <= 0: leave as is)
int cli_cpu_count(void);  // threads to use by default: OMP_NUM_THREADS, else the cores this process may run on
int cli_mkdir_p(const char *path);                       // 0 on success
// Creates ROOT/<id> for --dump-dir (a '/' in the id becomes '_') and writes its path to dir.
ac_status cli_dump_dir(const char *root, const char *id, char *dir, size_t cap);
int cli_caption(int argc, char **argv);

#endif
