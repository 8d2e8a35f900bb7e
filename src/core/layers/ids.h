/* ids.h — what the kinds that read integer ids share (embedding.c,
 * embedding_bag.c): the check that their input is a model input of
 * dtype int32 or int64, and an id turned into a table row, an id out of range
 * becoming the graph's fault, never a read outside the table. */
#ifndef MIMO_CORE_LAYERS_IDS_H
#define MIMO_CORE_LAYERS_IDS_H

#include "core/kind.h"

/* float32 holds every integer up to 2^24 exactly */
#define MIMO_IDS_MAX (1 << 24)

/* n's input k must be a model input with dtype: int32 or int64, or a
 * layer whose output is ids (hashing: its bins fit n's id_bound), of at
 * most max_rank axes; else a message naming the layers and -1. */
int mimo_ids_input(const mimo_graph *g, const mimo_node *n, int k, int max_rank,
                   char *err, size_t len);

/* The row of id v in a table of dim rows, or -1 (and the graph's fault,
 * the first one kept) when v is no integer in [0, dim). */
long mimo_ids_row(mimo_graph *g, const mimo_node *n, mimo_real v, int dim);

/* The same for an int64 id (an input of dtype: int64, read exactly). */
long mimo_ids_row_i64(mimo_graph *g, const mimo_node *n, int64_t v, int dim);

#endif
