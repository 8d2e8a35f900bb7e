/* dist.h — data parallelism over MPI: the gradient sum over ranks, parameter
 * broadcast, replica checksums, and reductions of logged sums. Every
 * function taking a mimo_dist is collective on its communicator unless it
 * says otherwise.
 *
 * The gradient sum has three forms (mimo_allreduce):
 *   shared    the ranks of a node map their gradients, one parameter
 *             buffer and one buffer per optimizer moment in shared memory
 *             (MPI_Win_allocate_shared); after backward each sums its 1/p
 *             slice of the node's gradients in rank order, allreduces it
 *             with the same slice's owners on the other nodes, and updates
 *             that slice of the parameters and moments (src/shm.h). No
 *             copies through MPI on a node; one update per node.
 *   bucketed  MPI_Iallreduce of fixed buckets, each started as backward
 *             completes it and progressed with MPI_Test during backward.
 *   blocking  one MPI_Allreduce after backward.
 * auto (the default) is shared when every node runs the same number (> 1)
 * of ranks, else bucketed. Under every form the embedding tables are
 * summed by the rows each rank touched (bucketed, blocking: rows.h;
 * shared: shm.h), unless mimo_dist_opts.dense_embeddings. */
#ifndef MIMO_COMM_DIST_H
#define MIMO_COMM_DIST_H


#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "core/model.h"
#include "mimo/trainer.h"
#include "comm/trace.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef MIMO_REAL_DOUBLE
#define MIMO_MPI_REAL MPI_DOUBLE
#else
#define MIMO_MPI_REAL MPI_FLOAT
#endif

#define MIMO_BUCKET_BYTES_DEFAULT (2u << 20) /* 2 MiB */

typedef struct mimo_dist mimo_dist;

/* For n gradient values on comm (a communicator of mimo_comm_dup); trace
 * may be NULL. Not collective. comm may be MPI_COMM_NULL: one process,
 * and MPI is never called. */
int mimo_dist_create(MPI_Comm comm, size_t n, const mimo_dist_opts *o,
                     mimo_trace *trace, mimo_dist **out);
void mimo_dist_free(mimo_dist **d);
/* Frees this rank's memory only, with no MPI call (the shared windows are
 * freed collectively): for a rank that failed alone, whose job then ends
 * with MPI_Abort. */
void mimo_dist_abandon(mimo_dist **d);
int mimo_dist_rank(const mimo_dist *d);
int mimo_dist_size(const mimo_dist *d);
MPI_Comm mimo_dist_comm(const mimo_dist *d);
int mimo_dist_buckets(const mimo_dist *d);

/* Wires d into m: its rank and size, and d's exchange (mimo/exchange.h:
 * node_shared, setting up the shared-memory windows, when the mode is
 * shared or auto resolves to it; else allreduce). Collective. */
int mimo_dist_attach(mimo_dist *d, mimo_model *m);

/* The form of the gradient sum in use (auto resolved by attach). Not
 * collective. */
mimo_allreduce mimo_dist_mode(const mimo_dist *d);

/* Seconds this rank spent in each phase of the step (indexed by
 * mimo_phase: data, forward, backward, optimizer, and the exchange:
 * waiting for the sum, or, node_shared, summing and updating) since the
 * last reset. Not collective. */
void mimo_dist_times(mimo_dist *d, double secs[MIMO_N_PHASES], int reset);

/* params = src (n values) on every rank: through the one writer of each
 * node when the node shares its parameters (--allreduce shared). d may be
 * NULL. Collective when d is set. */
int mimo_dist_write_params(mimo_dist *d, mimo_model *m, const mimo_real *src);

/* Rank 0's parameters to every rank. */
int mimo_dist_bcast(mimo_dist *d, mimo_real *params, size_t n);

/* Compares a checksum of params across ranks: MIMO_EMPI naming the step
 * when the replicas differ. */
int mimo_dist_check_replicas(mimo_dist *d, const mimo_real *params, size_t n,
                             long long step);

/* In-place sum of n doubles over all ranks. */
int mimo_dist_sum(mimo_dist *d, double *v, int n);

/* Sums per-head stats and counts over all ranks (st holds this rank's
 * sums before, the global sums after). */
int mimo_dist_sum_stats(mimo_dist *d, mimo_stats *st);

/* Combines flags (bits, OR) over the ranks without waiting: posts this
 * step's flags and returns in *verdict the combination of the flags every
 * rank posted at the previous call (0 at the first), so all ranks act on
 * the same step. d may be NULL (one process): *verdict = flags at once.
 * Every rank calls it once per step. Collective. */
int mimo_dist_vote(mimo_dist *d, int flags, int *verdict);
/* Completes a vote in flight (before freeing d, or before work that must
 * not overlap it). Collective. */
int mimo_dist_vote_drain(mimo_dist *d);

/* A duplicate of comm for mimo's own use, with MPI_ERRORS_RETURN, so an
 * MPI failure is a checked error and never an abort inside MPI.
 * MPI_COMM_NULL gives MPI_COMM_NULL. Collective. */
int mimo_comm_dup(MPI_Comm comm, MPI_Comm *out);
/* Frees a communicator of mimo_comm_dup (collective) and sets it NULL. */
void mimo_comm_free(MPI_Comm *comm);
/* How many ranks of comm share this node's memory, and this rank's index
 * among them (1 and 0 for MPI_COMM_NULL). Collective. */
int mimo_comm_node(MPI_Comm comm, int *local, int *local_rank);

/* FNV-1a of the bytes of params (the same on every rank when identical). */
uint64_t mimo_params_checksum(const mimo_real *params, size_t n);


#ifdef __cplusplus
}
#endif
#endif
