/* model.h (internal) — the parts of one training step (read, forward,
 * loss, backward, update), which train/step.c runs in order, the model's
 * gradient buffer, optimizer and exchange, and the epoch's order and
 * slices. What users see of a model is mimo/model.h. */
#ifndef MIMO_CORE_MODEL_H
#define MIMO_CORE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/exchange.h"
#include "core/graph.h"
#include "core/metrics.h"
#include "core/optim.h"
#include "mimo/model.h"

/* The gradient buffer in use (the exchange's when it owns one; what it
 * holds when: above). */
mimo_real *mimo_model_grads(mimo_model *m);
mimo_optim *mimo_model_optim(mimo_model *m);
/* This process is rank `rank` of `size` (default 0 of 1) and its step's
 * update goes through x (copied; NULL: mimo_exchange_local()). The one
 * place the exchange is chosen. */
void mimo_model_set_exchange(mimo_model *m, int rank, int size,
                                      const mimo_exchange *x);
/* The exchange in use (owned by the model). One process: `local`, or
 * `local_rows` (core/sparse.h) when the model has embedding tables. */
mimo_exchange *mimo_model_exchange(mimo_model *m);
/* The embedding tables are cleared and updated in full on one process
 * (--embedding-grads dense): `local` instead of `local_rows`. */
void mimo_model_dense_tables(mimo_model *m);
int mimo_model_rank(const mimo_model *m);
int mimo_model_size(const mimo_model *m);

/* Steps per epoch for n rows at the spec's global batch. */
long mimo_model_steps_per_epoch(const mimo_model *m, size_t n);
/* The sample order of an epoch of n rows: the permutation drawn from
 * (seed, epoch) when the spec shuffles, else 0..n-1; the same on every
 * rank. Owned by the model, valid until the next call; NULL when out of
 * memory (memory is taken only when n grows). */
const uint64_t *mimo_model_order(mimo_model *m, size_t n, long epoch);

/* ---- the parts of one training step (in train/step.c's order) ---------- */

/* This rank's contiguous share [lo, hi) of a global batch of gb rows. */
void mimo_model_slice(const mimo_model *m, size_t gb, size_t *lo,
                               size_t *hi);
/* The rows of one micro-step: the update's global batch split in
 * train.accumulate (k, default 1) parts. */
static inline long mimo_micro_batch(const mimo_spec *s)
{
    return s->train.accumulate > 1 ? s->train.batch_size / s->train.accumulate
                                   : s->train.batch_size;
}
/* k of the model (1 without accumulation). */
int mimo_model_accumulate(const mimo_model *m);
/* This rank's rows of a step's global batch rows[0, gb), split in k
 * micro-batches (micro-batch j: rows [j gb / k, (j + 1) gb / k), this
 * rank's slice of each, one after the other): their count, the rows at
 * *out (rows + lo itself when k is 1; else the model's buffer, a second
 * one when next is set: the next step's, for a prefetch, leaving the
 * step's micro-batch offsets alone). */
int mimo_model_plan(mimo_model *m, const uint64_t *rows, size_t gb, int next,
                    const uint64_t **out);
/* Micro-batch j of the last plan: its row count, *off its first row in
 * the rows read. */
int mimo_model_micro_rows(const mimo_model *m, int j, int *off);
/* Forward, loss and backward work on the rows read from row off on (and
 * their weights); last: this micro-batch's backward ends the step's, so
 * it tells the exchange when layers are done (earlier ones must not:
 * their gradient is not final). Default: (0, 1). */
void mimo_model_micro(mimo_model *m, int off, int last);
/* A step of epoch `epoch` begins (for dropout's and the data's draws);
 * the exchange's begin_step clears the gradient buffer. */
void mimo_model_begin_step(mimo_model *m, long epoch);
/* Reads rows[0, b) of src into the model's batch buffers (inputs, and
 * targets when targets is set). */
int mimo_model_read(mimo_model *m, const mimo_source *src,
                             const uint64_t *rows, int b, int targets);
/* Forward in training mode over the b rows read (b may be 0 on a rank
 * without rows when the graph is collective). */
void mimo_model_forward(mimo_model *m, int b);
/* Weighs the b rows read for the heads that weigh rows (missing labels,
 * sample and class weights: mimo_graph_weigh) and sums the weights over
 * the global batch of gb rows: each head's loss is divided by its global
 * sum, so that the step is the same on any number of ranks. Collective
 * (a small sum over the ranks) when some head weighs rows: every rank
 * calls it every step, also with no rows. */
int mimo_model_weigh(mimo_model *m, int b, size_t gb);
/* The losses of the b rows: seeds backward with the gradient of the
 * step's total loss (each head's mean over the global batch by
 * mimo_model_weigh's sums, times its weight) and adds the rows' losses
 * and metrics into st (may be NULL). */
int mimo_model_loss(mimo_model *m, int b, mimo_stats *st);
/* The sums of the last mimo_model_loss (n_heads: loss, weight, labelled). */
const mimo_head_stats *mimo_model_step_stats(const mimo_model *m);
/* Head h's weight in the total loss now: its `weight`, or exp(-s_h)
 * with loss_weighting: uncertainty. */
double mimo_model_head_weight(const mimo_model *m, int h);
/* The total loss of per-head losses (NaN ones left out). */
double mimo_model_total_loss(const mimo_model *m, const double *head_loss);
/* With train.task_balancing, after a step's last backward: the heads'
 * gradients combined into the gradient buffer (collective: a sum over
 * the ranks of their shared parts); else nothing. */
int mimo_model_balance(mimo_model *m, long epoch, long step);
/* With train.grad_diagnostics, after a step's last backward: the step's
 * Gram matrix of the heads' gradients (mimo_graph_diag_gram) into st's
 * sums, and cleared for the next step; else nothing. */
int mimo_model_diag_add(mimo_model *m, mimo_stats *st);
/* Backward over the b rows: adds into the gradient buffer. */
void mimo_model_backward(mimo_model *m, int b);
/* The rows of this step's backward (0 when it ran none): what a
 * row-sparse exchange reads the touched rows of (mimo_graph_touched_rows). */
int mimo_model_backward_rows(const mimo_model *m);

#endif
