/* vmath.h — vectorized exp/log for the elementwise kernels (act.c, loss.c).
 *
 * glibc's libmvec (linked through libm) has SIMD versions of exp, log,
 * log1p, expm1 and tanh for SSE, AVX2 and AVX-512. <math.h> declares them
 * with GCC's simd attribute only under -ffast-math, which mimo does not
 * use (it would also reassociate sums and drop NaN checks). Declaring
 * these few functions the same way here lets GCC vectorize the loops that
 * call them and changes nothing else: libmvec's results are within a few
 * ulp of the scalar ones (glibc's manual lists the bounds).
 *
 * MIMO_VEC_KERNEL before a hot elementwise function additionally builds an
 * AVX2 clone of it, chosen at load time on CPUs that have AVX2 (the rest of
 * mimo stays baseline x86-64, like Debian's packages). Both are no-ops on
 * other compilers, architectures and C libraries. The double names are
 * parenthesized so <tgmath.h>'s macros leave them alone.
 */
#ifndef MIMO_VMATH_H
#define MIMO_VMATH_H

#include <math.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) &&     \
    defined(__GLIBC__) && !defined(__FAST_MATH__) &&                        \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#define MIMO_SIMD_DECL __attribute__((simd("notinbranch")))
MIMO_SIMD_DECL float expf(float);
MIMO_SIMD_DECL double (exp)(double);
MIMO_SIMD_DECL float logf(float);
MIMO_SIMD_DECL double (log)(double);
MIMO_SIMD_DECL float log1pf(float);
MIMO_SIMD_DECL double (log1p)(double);
MIMO_SIMD_DECL float expm1f(float);
MIMO_SIMD_DECL double (expm1)(double);
MIMO_SIMD_DECL float tanhf(float);
MIMO_SIMD_DECL double (tanh)(double);
#define MIMO_VEC_KERNEL __attribute__((target_clones("avx2", "default")))
#endif

#ifndef MIMO_VEC_KERNEL
#define MIMO_VEC_KERNEL
#endif

/* Loops over these functions run in chunks of MIMO_LANES values, the last
 * chunk padded, so that every value goes through the same vector code:
 * a compiler's scalar epilogue (the scalar exp) would give a value other
 * last bits depending on where it lies — on its row in the batch, and so
 * on the batch size and the number of ranks. One AVX2 vector of float. */
#define MIMO_LANES 8

#include "mimo/real.h"

/* exp(z_j - max z) over a row of n, chunked as above: into y (when not
 * NULL); returns their sum in row order, *max = max z. Softmax and the
 * log-sum-exp of the cross-entropy from logits share it. Static, so each
 * user gets its own AVX2 clone and no dispatcher is exported. The
 * including file includes <tgmath.h> (exp of mimo_real). */
__attribute__((unused)) MIMO_VEC_KERNEL static mimo_real
mimo_exp_shifted(const mimo_real *restrict z, mimo_real *restrict y, int n, mimo_real *max)
{
    mimo_real m = z[0], s = 0, x[MIMO_LANES], e[MIMO_LANES];
    for (int j = 1; j < n; j++)
        m = z[j] > m ? z[j] : m;
    for (int i = 0; i < n; i += MIMO_LANES) {
        int c = n - i < MIMO_LANES ? n - i : MIMO_LANES;
        for (int j = 0; j < MIMO_LANES; j++)
            x[j] = j < c ? z[i + j] - m : 0;
        #pragma omp simd
        for (int j = 0; j < MIMO_LANES; j++)
            e[j] = exp(x[j]);
        for (int j = 0; j < c; j++) {
            s += e[j];
            if (y)
                y[i + j] = e[j];
        }
    }
    *max = m;
    return s;
}

#endif
