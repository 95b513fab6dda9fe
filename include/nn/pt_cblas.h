/* pt_cblas.h: the CBLAS declarations of whichever BLAS the build found (cmake/blas.cmake): MKL
 * names its header mkl_cblas.h, every other vendor cblas.h. */
#ifndef PT_CBLAS_H
#define PT_CBLAS_H

#if defined(PRETEXT_BLAS_MKL)
#include <mkl_cblas.h>
#else
#include <cblas.h>
#endif

#endif
