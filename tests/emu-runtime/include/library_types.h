// CPU stand-in: the data types cuBLAS and cuFFT name.
#ifndef EMU_LIBRARY_TYPES_H
#define EMU_LIBRARY_TYPES_H
typedef enum cudaDataType_t { CUDA_R_32F = 0, CUDA_R_64F = 1, CUDA_R_16F = 2, CUDA_R_16BF = 14 } cudaDataType;
typedef cudaDataType cudaDataType_t;
#endif
