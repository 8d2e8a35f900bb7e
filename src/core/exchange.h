/* exchange.h — the exchange contract: how a training step's gradient
 * becomes the update, over one process or many. One implementation table
 * (mimo_exchange_ops) is chosen once, when the model is wired to its
 * runtime (mimo_model_set_exchange), and train/step.c calls it directly:
 *
 *     mimo_exchange_begin_step   the gradient buffer is zeros
 *     (backward)                 every layer ADDS into it; layer_done
 *                                after each layer (a prefix is final)
 *     mimo_exchange_finish       summed gradients -> optimizer, or the
 *                                update applied by the implementation
 *
 * The implementations (no MPI here: the struct is core's, the MPI ones
 * live in src/comm):
 *   local        one process (mimo_exchange_local, src/core/exchange.c):
 *                owns nothing; finish is the optimizer step on the
 *                model's own buffers.
 *   allreduce    src/comm/dist.c: owns nothing (sums the model's gradient
 *                buffer in place: buckets started as backward completes
 *                them, or one blocking MPI_Allreduce); finish waits for
 *                the sum, then the optimizer step on every rank.
 *   local_rows   one process, a model with embedding tables
 *                (src/core/sparse.c): as local, but the tables are
 *                cleared and (plain sgd, lazy adam) updated only in the
 *                rows the step touched.
 *   row_sparse   src/comm/dist.c over src/comm/rows.c: allreduce for
 *                the buffer outside the embedding tables, and each
 *                table summed by the rows the ranks touched (one
 *                MPI_Allgatherv, merged in rank order); plain sgd then
 *                updates only those rows.
 *   node_shared  src/comm/dist.c over src/comm/shm.c: owns the
 *                parameters, every rank's gradient buffer and the
 *                optimizer moments, in node-shared memory, and lends
 *                them to the model (params, grads) and the optimizer
 *                (mimo_optim_lend_slot); finish sums the node's
 *                gradients and updates this rank's slice, leaving zeros
 *                in the gradient buffer. node_shared_rows: the same,
 *                the embedding tables summed (and, across nodes, sent)
 *                by the rows the ranks touched, updated as row_sparse.
 * Another exchange (reduced precision) is one more table:
 * see ARCHITECTURE.md. */
#ifndef MIMO_CORE_EXCHANGE_H
#define MIMO_CORE_EXCHANGE_H


#include <stddef.h>

#include "core/optim.h"
#include "mimo/real.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mimo_model mimo_model;

/* The parts of a step an implementation may time (phase). */
typedef enum {
    MIMO_PHASE_DATA,
    MIMO_PHASE_FORWARD,
    MIMO_PHASE_BACKWARD,
    MIMO_PHASE_OPTIMIZER,
    MIMO_PHASE_EXCHANGE, /* summing (and, node_shared, applying) */
    MIMO_N_PHASES
} mimo_phase;

/* What an implementation owns and lends (mimo_exchange_ops.owns); what
 * it does not own is the model's (mimo_model_params, mimo_model_grads,
 * the optimizer's moments). */
enum {
    MIMO_EXCHANGE_OWNS_PARAMS = 1,
    MIMO_EXCHANGE_OWNS_GRADS = 2,
    MIMO_EXCHANGE_OWNS_MOMENTS = 4
};

typedef struct {
    const char *name;   /* "local", "allreduce", "node_shared", ... */
    unsigned owns;      /* MIMO_EXCHANGE_OWNS_* */
    /* Before the step: grads (n trained values) is zeros on return. */
    void (*begin_step)(void *state, mimo_real *grads, size_t n);
    /* After each layer's backward: grads[0, done) is final. May be NULL. */
    void (*layer_done)(void *state, const char *layer, size_t done);
    /* After backward, on every rank every step (also with no rows): the
     * gradient summed over the ranks, and the optimizer's step of o at
     * rate lr applied to params. 0, or an error (all ranks see one). */
    int (*finish)(void *state, mimo_optim *o, mimo_real *params,
                  mimo_real *grads, size_t n, double lr);
    /* Whether every replica of params (n values) is the same: 0, or
     * MIMO_EMPI naming the step. Collective. */
    int (*checksum)(void *state, const mimo_real *params, size_t n,
                    long long step);
    /* Sums v (n doubles) over the ranks (batch statistics, row weights).
     * NULL: one process. */
    int (*reduce)(void *state, double *v, int n);
    /* Start (end 0) and end (1) of a part of the step, for timings and
     * traces. May be NULL. */
    void (*phase)(void *state, mimo_phase p, int end);
} mimo_exchange_ops;

/* An implementation chosen: its table, its state, and the buffers it
 * lends the model (NULL unless ops->owns says so). */
typedef struct {
    const mimo_exchange_ops *ops;
    void *state;
    mimo_real *params, *grads;
    /* 0 when another rank of the node updates the shared untrained
     * parameters (batch_norm's moving statistics) */
    int writes_state;
} mimo_exchange;

/* The one-process implementation (state NULL, owns nothing). */
mimo_exchange mimo_exchange_local(void);

/* The contract's operations on m's buffers, optimizer and rate. */
void mimo_exchange_begin_step(mimo_exchange *x, mimo_model *m);
int mimo_exchange_finish(mimo_exchange *x, mimo_model *m);
int mimo_exchange_checksum(mimo_exchange *x, mimo_model *m,
                                    long long step);
/* x's phase hook, when it has one. */
void mimo_exchange_phase(const mimo_exchange *x, mimo_phase p, int end);

#ifdef __cplusplus
}
#endif
#endif
