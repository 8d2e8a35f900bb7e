/* drop.h — dropout's draws, shared by the kinds that drop (dropout.c,
 * attention.c's dropout on the attention weights): the scaled mask of one
 * sample depends only on (seed, epoch, the sample's global row, the
 * layer's name) — never on the rank that holds the sample — so 1 rank and
 * N ranks draw the same masks. */
#ifndef MIMO_CORE_LAYERS_DROP_H
#define MIMO_CORE_LAYERS_DROP_H

#include <stdint.h>

#include "core/kind.h"

/* The key of a layer's draws: a hash of its name (FNV-1a). */
uint64_t mimo_drop_layer_key(const char *name);

/* The scaled mask of one sample (global row `row`) into m[0, w): element
 * j is 1 / (1 - rate) when kept, 0 when dropped (rate in [0, 1)), from a
 * counter-based generator keyed by (seed, g's epoch, layer, row). */
void mimo_drop_mask(const mimo_graph *g, uint64_t layer, uint64_t row, double rate,
                    mimo_real *m, int w);

#endif
