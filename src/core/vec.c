/* vec.c — whole-buffer passes of the training step that are pure memory
 * traffic (zeroing the gradient buffers), split over the OpenMP threads
 * when large: one core rarely saturates the memory bus. */
#include <string.h>

#include "core/graph_impl.h"
#include "core/par.h"

#define ZERO_CHUNK 16384 /* values per thread-chunk (64 KiB of floats) */

void mimo_vec_zero(mimo_real *x, size_t n)
{
    long chunks = (long)((n + ZERO_CHUNK - 1) / ZERO_CHUNK);
    MIMO_PAR_FOR(n >= 4 * MIMO_PAR_MIN, long k = 0, k < chunks, k++, {
        size_t s = (size_t)k * ZERO_CHUNK;
        memset(x + s, 0, sizeof(mimo_real) * (n - s < ZERO_CHUNK ? n - s : ZERO_CHUNK));
    });
}
