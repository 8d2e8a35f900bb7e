/* sparse.h — the row-sparse tables of a model (embedding, embedding_bag:
 * mimo_graph_sparse_tables) and the rows a step touched: what lets a
 * step clear, sum and update only those rows, never a whole table. Core
 * (no MPI): the one-process exchange `local` uses it alone; comm/rows.c
 * adds the sum over the ranks (each rank's rows, merged in rank order).
 *
 * Per step: mimo_sparse_begin (the tables' gradient is zeros again) ..
 * backward .. the step's rows noted (mimo_sparse_note_local on one
 * process; comm/rows.c notes every rank's) .. mimo_sparse_update. */
#ifndef MIMO_CORE_SPARSE_H
#define MIMO_CORE_SPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "core/model.h"

typedef struct mimo_sparse mimo_sparse;

/* The tables of m's graph, for a gradient buffer of n_grads values and a
 * step's rows from up to `ranks` processes; *out NULL (and 0) when the
 * graph has none. */
int mimo_sparse_create(mimo_model *m, size_t n_grads, int ranks, mimo_sparse **out);
void mimo_sparse_free(mimo_sparse **s);

/* How many tables, and table k (sorted by offset). */
int mimo_sparse_count(const mimo_sparse *s);
const mimo_sparse_table *mimo_sparse_table_at(const mimo_sparse *s, int k);
/* The ranges of the gradient buffer outside the tables, in order:
 * [lo[i], hi[i]) for i < the count returned (owned by s). */
int mimo_sparse_dense(const mimo_sparse *s, const size_t **lo, const size_t **hi);

/* Before backward: the tables' gradients are zeros again (the rows the
 * last step noted; all of them the first time and after an update that
 * used the buffer as scratch). The ranges outside are the caller's. */
void mimo_sparse_begin(mimo_sparse *s, mimo_real *grads);
/* The distinct rows of table k this process's backward touched this
 * step (owned by s, valid until the next call). */
size_t mimo_sparse_local(mimo_sparse *s, int k, const int32_t **rows);
/* Row `row` of table k is part of the step's update (once: repeats are
 * ignored); mimo_sparse_noted after the last note. */
void mimo_sparse_note(mimo_sparse *s, int k, int32_t row);
void mimo_sparse_noted(mimo_sparse *s);
/* The rows of table k noted since the last begin (or forget), in the
 * order noted (owned by s). */
size_t mimo_sparse_rows(const mimo_sparse *s, int k, const int32_t **rows);
/* The noted rows forgotten, no buffer touched: for a caller that clears
 * its buffers itself (comm/shm.c). */
void mimo_sparse_forget(mimo_sparse *s);
/* One process: the rows its backward touched are the step's. */
void mimo_sparse_note_local(mimo_sparse *s);

/* The optimizer's step on the summed gradient: when it is row-sparse
 * (mimo_optim_row_sparse) the ranges outside the tables and the noted
 * rows only, else the whole buffer — bitwise the same update. */
void mimo_sparse_update(mimo_sparse *s, mimo_optim *o, mimo_real *params,
                        mimo_real *grads, double lr);

/* The one-process exchange over s (owned by the caller): as `local`, but
 * it clears and updates only the tables' noted rows. */
mimo_exchange mimo_exchange_local_rows(mimo_sparse *s);

#endif
