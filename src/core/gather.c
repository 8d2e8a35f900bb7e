/* gather.c — the batch gather (see gather.h). */
#include "core/gather.h"

#include <string.h>

/* One row of W values: a copy of known size, inlined by the compiler. */
#define MIMO_GATHER_W(W)                                                          \
    case W:                                                                       \
        for (int k = 0; k < b; k++)                                               \
            memcpy(dst + (size_t)k * W, src + (rows[k] + r0) * W, sizeof *dst * W); \
        return;

/* Narrow rows are copied inline: a memcpy call per row of a few values
 * cost more than the copy (20% of a tiny network's `mimo train`). */
void mimo_gather_rows(mimo_real *restrict dst, const mimo_real *restrict src,
                      const uint64_t *rows, int b, uint64_t r0, size_t w)
{
    switch (w) {
        MIMO_GATHER_W(1) MIMO_GATHER_W(2) MIMO_GATHER_W(3) MIMO_GATHER_W(4)
        MIMO_GATHER_W(5) MIMO_GATHER_W(6) MIMO_GATHER_W(7) MIMO_GATHER_W(8)
        MIMO_GATHER_W(16) MIMO_GATHER_W(32)
    default:
        break;
    }
    if (w < 32) {
        for (int k = 0; k < b; k++) {
            const mimo_real *s = src + (rows[k] + r0) * w;
            for (size_t j = 0; j < w; j++)
                dst[(size_t)k * w + j] = s[j];
        }
        return;
    }
    for (int k = 0; k < b; k++)
        memcpy(dst + (size_t)k * w, src + (rows[k] + r0) * w, sizeof *dst * w);
}
#undef MIMO_GATHER_W
