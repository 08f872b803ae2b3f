// OpenBLAS kernel selection (host/blas.c).
#ifndef AC_BLAS_H
#define AC_BLAS_H

// Call first thing in main: where OpenBLAS fell back to its generic kernels on a CPU it does not know (before
// 0.3.26: Sapphire Rapids and newer), runs the program again with OPENBLAS_CORETYPE set to the kernels the CPU
// can run; returns where nothing needs doing or the re-run could not start. AC_NO_BLAS_RETUNE=1 disables it.
void ac_blas_retune(char **argv);

#endif
