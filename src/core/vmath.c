/* vmath.c — the chunked vector math the activations and losses share
 * (see vmath.h). */
#include <tgmath.h>

#include "core/vmath.h"

MIMO_VEC_KERNEL mimo_real mimo_exp_shifted(const mimo_real *restrict z,
                                           mimo_real *restrict y, int n,
                                           mimo_real *max)
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
