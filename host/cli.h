// Helpers shared by the audiocap subcommands (host/cli.c, host/cli_caption.c).
#ifndef AC_CLI_H
#define AC_CLI_H

void cli_set_threads(int n);                             // OpenMP + OpenBLAS threads (n <= 0: leave as is)
int cli_mkdir_p(const char *path);                       // 0 on success
int cli_caption(int argc, char **argv);

#endif
