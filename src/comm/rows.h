/* rows.h — the sum over the ranks of the embedding tables' gradients
 * by the rows each rank touched, never the tables in full (the tables,
 * their row lists and the update are core's: core/sparse.h). Used by
 * dist.c's exchange `row_sparse` (the allreduce of the rest of the
 * buffer, then these rows); see rows.c for the exchange and why its sum
 * is the dense one. */
#ifndef MIMO_COMM_ROWS_H
#define MIMO_COMM_ROWS_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/sparse.h"

typedef struct mimo_rows mimo_rows;

/* A row id or count carried bit for bit in a value slot, so a row list
 * travels in the same message (and the same MPI datatype) as the rows'
 * values; rows.c's and shm.c's messages both. mimo_real is at least as
 * wide as int32_t. */
static inline mimo_real mimo_rows_to_slot(int32_t v)
{
    mimo_real x = 0;
    memcpy(&x, &v, sizeof v);
    return x;
}

static inline int32_t mimo_rows_from_slot(mimo_real x)
{
    int32_t v;
    memcpy(&v, &x, sizeof v);
    return v;
}

/* The tables of m's graph on comm (rank of size), with their buffers,
 * for a gradient buffer of n_grads values;
 * *out NULL (and 0) when the graph has none. Not collective. */
int mimo_rows_create(MPI_Comm comm, int rank, int size, mimo_model *m,
                     size_t n_grads, mimo_rows **out);
void mimo_rows_free(mimo_rows **r);

/* The ranges of the gradient buffer (n_grads values) outside the tables,
 * in order: [lo[k], hi[k]) for k < the count returned (owned by r). */
int mimo_rows_dense(const mimo_rows *r, const size_t **lo, const size_t **hi);

/* Before backward: the tables' gradients are zeros again (the rows the
 * last step touched, or all of them the first time and after an update
 * that used the buffer as scratch). Does not touch the ranges outside. */
void mimo_rows_begin(mimo_rows *r, mimo_real *grads);

/* After backward: each table's touched rows summed over the ranks in
 * grads (every other row stays zero). Collective. */
int mimo_rows_sum(mimo_rows *r, mimo_real *grads);

/* One rank: the rows its backward touched are the step's (no sum). */
void mimo_rows_note_local(mimo_rows *r);

/* The update (mimo_sparse_update): only the rows when the optimizer
 * is row-sparse, else the whole buffer. */
void mimo_rows_update(mimo_rows *r, mimo_optim *o, mimo_real *params,
                      mimo_real *grads, double lr);

#endif
