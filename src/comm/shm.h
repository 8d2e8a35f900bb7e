/* shm.h — the node-shared form of data parallelism (internal to libmimo;
 * dist.c drives it for --allreduce shared).
 *
 * The ranks of a node (MPI_COMM_TYPE_SHARED, or groups of ranks_per_node)
 * map three kinds of memory with MPI_Win_allocate_shared:
 *   - every rank's gradient buffer (n values each),
 *   - ONE parameter buffer for the node, and
 *   - ONE buffer per optimizer moment for the node.
 * Rank l of the L ranks of a node owns the slice [n l / L, n (l+1) / L).
 * A step: backward writes each rank's gradient; barrier; each rank adds up
 * its slice of the node's gradients in rank order (zeroing what it read,
 * for the next step's backward to add into) and updates its slice of
 * the parameters and moments: block by block, each block summed in L1,
 * on one node without clipnorm; else through a private buffer of the
 * slice, allreduced with the ranks of the same local index on the other
 * nodes and / or reduced to the global norm; barrier; every rank's next
 * forward reads the one parameter buffer.
 * Embedding tables are summed by rows: only the rows some rank of the
 * node touched are read, summed (in rank order: bitwise the dense sum)
 * and zeroed; across nodes only those rows travel (one MPI_Allgatherv
 * of the slice's rows, added in node order); a row-sparse optimizer
 * updates only them (see shm.c). Each rank's gradient buffer stays
 * table-sized.
 * Each value is read and written once per node and step, where a
 * replicated optimizer reads the summed gradient and rewrites all the
 * parameters on every rank.
 *
 * Outside the step, parameters are written only through
 * mimo_shm_write_params and mimo_shm_bcast_params (local rank 0 writes,
 * the node waits before and after); loading a checkpoint into the model
 * happens before attach. */
#ifndef MIMO_SHM_H
#define MIMO_SHM_H

#include <mpi.h>
#include <stddef.h>

#include "core/model.h"

typedef struct mimo_shm mimo_shm;

/* Splits comm into nodes, each rank to update a slice of the n trained
 * values, the first keep of them in one slice (mimo_optim_renorm).
 * Returns 1 (and *out NULL) when a node has one rank or the nodes differ
 * in size and !required; an error when required; else 0. Collective on
 * comm. */
int mimo_shm_create(MPI_Comm comm, size_t n, size_t keep, int ranks_per_node,
                    int required, mimo_shm **out);

/* Moves m's parameters and optimizer moments into node-shared memory (the
 * node's local rank 0 copies its own), lends the moments to m's optimizer
 * and sets *params and *grads to the node's parameters and this rank's
 * gradient buffer (zeros; the shared sum leaves zeros in it), for the
 * node_shared exchange to lend the model. m's embedding tables
 * (core/sparse.h) are summed by the rows the step touched unless
 * dense_tables (or the step's rows are not its backward's: accumulate,
 * task_balancing). */
int mimo_shm_attach(mimo_shm *s, mimo_model *m, int dense_tables,
                    mimo_real **params, mimo_real **grads);
/* Whether the tables are summed by rows (attach). */
int mimo_shm_rows(const mimo_shm *s);

/* This rank's index among the ranks of its node. */
int mimo_shm_local_rank(const mimo_shm *s);

/* After backward: sums this rank's slice of the gradients over all ranks
 * and applies o's step to that slice of params and moments at rate lr;
 * every slice is updated on return. */
int mimo_shm_apply(mimo_shm *s, mimo_optim *o, mimo_real *params, double lr);

/* Rank 0's parameters to every node (each node's local rank 0 receives). */
int mimo_shm_bcast_params(mimo_shm *s);
/* dst (the shared parameters) = src, n values, written once per node. */
int mimo_shm_write_params(mimo_shm *s, mimo_real *dst, const mimo_real *src,
                          size_t n);

/* Collective: copies the parameters and moments back into the model's own
 * buffers and frees the windows. */
void mimo_shm_free(mimo_shm **s);
/* Not collective (a rank failing alone): frees this rank's memory only. */
void mimo_shm_abandon(mimo_shm **s);

#endif
