// OpenBLAS kernel selection for programs that run the CPU path (host/blas.h).
#include "blas.h"

#include <cblas.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

// OpenBLAS releases before 0.3.26 (Debian 12 ships 0.3.21) do not recognise Sapphire/Emerald Rapids and newer
// CPUs and fall back to their SSE3 "Prescott" kernels: 3-4x slower GEMMs (bench/RESULTS.md). OpenBLAS reads
// OPENBLAS_CORETYPE only when it is loaded, so when the user set none and the fallback is in use on a CPU with
// AVX-512 or AVX2, the program (the CLI, the CPU benchmarks) runs itself again once with the matching kernels.
// AC_NO_BLAS_RETUNE=1 disables this.
void ac_blas_retune(char **argv) {
#if defined(__x86_64__) && defined(__GNUC__)
    const char *off = getenv("AC_NO_BLAS_RETUNE");
    if (getenv("OPENBLAS_CORETYPE") || (off && off[0] == '1')) return;
    const char *core = openblas_get_corename();
    if (!core || strcasecmp(core, "prescott") != 0) return;
    __builtin_cpu_init();
    const char *want = __builtin_cpu_supports("avx512f") ? "SkylakeX" : __builtin_cpu_supports("avx2") ? "Haswell" : NULL;
    if (!want) return;
    setenv("OPENBLAS_CORETYPE", want, 1);
    execv("/proc/self/exe", argv);  // only returns on failure: carry on with the generic kernels
    unsetenv("OPENBLAS_CORETYPE");
#else
    (void)argv;
#endif
}

