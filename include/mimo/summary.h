/* summary.h — human-readable views of a compiled graph: a Keras-like layer
 * table and Graphviz text (inputs, branches, merges, heads, with shapes). */
#ifndef MIMO_SUMMARY_H
#define MIMO_SUMMARY_H

#include "mimo/api.h"

#include <stdio.h>

#include "mimo/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes the table: layer (type), output shape, params, connected to;
 * then totals and the heads. Returns 0 or MIMO_EIO. */
MIMO_API int mimo_summary_write(const mimo_graph *g, FILE *f);

/* Bytes one rank needs to train g, about: parameters, gradients, each
 * optimizer moment and the activations (and their gradients) at the
 * graph's batch; the data apart. */
MIMO_API double mimo_graph_train_bytes(const mimo_graph *g);

/* Writes a `digraph mimo { ... }` for `dot -Tpng`. Returns 0 or MIMO_EIO. */
MIMO_API int mimo_dot_write(const mimo_graph *g, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
