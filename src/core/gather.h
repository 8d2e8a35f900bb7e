/* gather.h — a shuffled batch's rows copied out of a table held in memory:
 * the one gather of both data sources (io/dataset.c for files loaded
 * whole, core/model.c for arrays a program hands in). */
#ifndef MIMO_CORE_GATHER_H
#define MIMO_CORE_GATHER_H

#include <stddef.h>
#include <stdint.h>

#include "mimo/real.h"

/* dst (b, w) = the rows r0 + rows[k] of src (., w), in one pass. */
void mimo_gather_rows(mimo_real *restrict dst, const mimo_real *restrict src,
                      const uint64_t *rows, int b, uint64_t r0, size_t w);

#endif
