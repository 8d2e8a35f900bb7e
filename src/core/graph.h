/* graph.h (internal) — running a compiled graph: batched forward and
 * backward passes, losses and row weights, training and inference modes,
 * layer timing. The graph owns its activation buffers (sized for
 * max_batch rows at compile time); it does not own parameters, gradients
 * or data: callers pass the flat buffers in. Nothing here knows MPI or
 * HDF5. What users see of a graph is mimo/graph.h. */
#ifndef MIMO_CORE_GRAPH_H
#define MIMO_CORE_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "mimo/graph.h"

/* Timing of each layer's forward and backward (for mimo bench): on adds
 * up seconds per node from now on (0 or MIMO_ENOMEM); layer_time reads
 * node k's (0 when off). Nodes are topologically sorted: see
 * mimo_graph_node_name. */
int mimo_graph_time_layers(mimo_graph *g, int on);
void mimo_graph_layer_time(const mimo_graph *g, int k, double *fwd,
                                    double *bwd);

/* 1 when the graph's dense and conv products run in bf16 (train.precision:
 * bf16 on a CPU with native bf16, core/bf16.h), 0 in float32. */
int mimo_graph_bf16(const mimo_graph *g);

/* Fills params (param_count values) with each layer's initializers, drawn
 * in topological order from a PRNG seeded with seed. */
void mimo_graph_init_params(const mimo_graph *g, mimo_real *params,
                            uint64_t seed);

/* Training mode for the following forwards and backwards: dropout draws
 * each sample's mask from (seed, epoch, its global row rows[r], layer),
 * batch_norm normalizes with the statistics of the global batch (summed
 * over the ranks with the reduce function) and updates its moving ones.
 * rows (b values) must stay valid until backward. Inference mode (after
 * compile, or mimo_graph_set_inference): dropout is the identity and
 * batch_norm uses its moving statistics. */
void mimo_graph_set_training(mimo_graph *g, const uint64_t *rows,
                                      long epoch);
void mimo_graph_set_inference(mimo_graph *g);

/* Sums n doubles over the ranks, in place (0, or an error code). */
typedef int (*mimo_reduce_fn)(void *user, double *v, int n);
/* Used by layers whose statistics span the global batch (batch_norm).
 * fn NULL: one process. writes_state 0: another rank of the node updates
 * the untrained state this rank's parameters share (moving statistics of
 * node-shared parameters). */
void mimo_graph_set_reduce(mimo_graph *g, mimo_reduce_fn fn, void *user,
                                    int writes_state);
/* Whether some layer reduces over the ranks in training mode: then every
 * rank must run forward and backward each step, also with no rows. */
int mimo_graph_collective(const mimo_graph *g);
/* The first error met inside forward or backward since the last call (an
 * id out of range, a failed reduction), 0 if none; clears it. */
int mimo_graph_status(mimo_graph *g);

/* Per-head gradient diagnostics (diag.c): enable finds the tensors where
 * the heads' paths part (an error when there are none); from then on
 * every backward adds, per pair of heads (a, b), the dot product of their
 * gradients at those tensors over the rows into gram[a * n_heads + b]
 * (a <= b; the diagonal: squared norms), until diag_clear. covers: head h
 * has a gradient at one of them. The training computation is unchanged. */
int mimo_graph_diag_enable(mimo_graph *g);
int mimo_graph_diag_on(const mimo_graph *g);
int mimo_graph_diag_covers(const mimo_graph *g, int h);
const double *mimo_graph_diag_gram(const mimo_graph *g);
void mimo_graph_diag_clear(mimo_graph *g);
/* The following backwards over the same b rows count as one (on 1 before
 * the first, 0 after the last): each head's gradient is the sum of what
 * they add (task balancing runs one per head). */
void mimo_graph_diag_group(mimo_graph *g, int on, int b);
/* While on, backwards add nothing to the Gram matrix. */
void mimo_graph_diag_pause(mimo_graph *g, int on);
/* The first node where the heads part (n_nodes without diagnostics):
 * a backward over the nodes after it gives the whole Gram matrix. */
int mimo_graph_diag_first(const mimo_graph *g);
/* Backward over the nodes after node `after` only (adds into grads). */
void mimo_graph_backward_after(mimo_graph *g, const mimo_real *params,
                               mimo_real *grads, int b, int after);
/* The heads' gradients kept apart in one backward (task balancing): a
 * layer one head reaches runs once, a layer of the shared trunk takes
 * the T heads' output gradients stacked (core/stacked.c). 0; MIMO_EINVAL
 * when a head's output feeds another head or is a view of the trunk, or
 * MIMO_ENOMEM: then run one backward per head (no error is set). */
int mimo_graph_stacked_enable(mimo_graph *g);
int mimo_graph_stacked_on(const mimo_graph *g);
/* After the loss seeded every head: adds head t's part of d loss / d
 * params into grads[t] (trained count values each), for every t. */
void mimo_graph_backward_stacked(mimo_graph *g, const mimo_real *params,
                                 mimo_real *const *grads, int b);
/* Seconds the diagnostics took in backward so far (their cost). */
double mimo_graph_diag_seconds(const mimo_graph *g);

/* Forward pass over b <= max_batch rows. inputs[i] is (b, width_i),
 * row-major, in input order; it must stay valid until backward. */
void mimo_graph_forward(mimo_graph *g, const mimo_real *params,
                        const mimo_real *const *inputs, int b);

/* Row weights. A head whose spec has `missing`, `sample_weight` or
 * `class_weight` weighs its rows: v = sample weight x class weight of
 * the row's class (each 1 when not given), or MIMO_UNLABELLED for a row
 * without a label. Other heads weigh every row 1. */
#define MIMO_UNLABELLED ((mimo_real)-1)
int mimo_graph_head_weighted(const mimo_graph *g, int h);
/* For each weighted head: w[h][r] = the weight of row r of targets[h]
 * (b, target_width_h), with sw[h] its sample weights (b values; sw or
 * sw[h] NULL: 1), and sums[h] = the sum of w[h] over its labelled rows;
 * for the others sums[h] = b and w[h] is not touched. Returns 0, or
 * MIMO_EINVAL for a target with some but not all units missing. */
int mimo_graph_weigh(const mimo_graph *g, const mimo_real *const *targets,
                              const mimo_real *const *sw, int b,
                              mimo_real *const *w, double *sums);

/* Per-head losses of the last forward against targets[h]
 * (b, target_width_h), rows weighted by w[h] (b values from
 * mimo_graph_weigh; w or w[h] NULL: every row labelled, weight 1); adds
 * the batch sums (loss, weight, labelled) into stats[h] (may be NULL).
 * With scale (n_heads values), also seeds the backward pass with the
 * gradient of sum_h scale[h] * sum_rows v * loss of the row (for the
 * global batch's mean: scale[h] = weight_h / the global sum of v). Rows
 * without a label contribute nothing. Returns 0, or MIMO_EINVAL for a
 * class label out of range. */
int mimo_graph_loss_weighted(mimo_graph *g, const mimo_real *const *targets,
                                      const mimo_real *const *w, int b,
                                      const double *scale, mimo_head_stats *stats);
/* The same with the weights of missing labels and class weights (no
 * sample weights) and scale[h] = weight_h * grad_scale, no gradient when
 * grad_scale is 0: sum_h weight_h * sum_rows loss * grad_scale (use
 * 1/global batch). */
int mimo_graph_loss(mimo_graph *g, const mimo_real *const *targets, int b,
                    double grad_scale, mimo_head_stats *stats);

/* train.loss_weighting: uncertainty -- the learned s_h of the heads are
 * the first n_heads trained parameters (tensor loss_weighting/log_var);
 * 0 otherwise. */
int mimo_graph_log_vars(const mimo_graph *g);
/* train.task_balancing: gradnorm -- the heads' learned weights are the
 * first n_heads trained parameters (tensor task_balancing/weight) and
 * their losses at the first step the untrained ones at *l0
 * (task_balancing/initial_loss; 0: not yet met); 0 otherwise. */
int mimo_graph_gradnorm(const mimo_graph *g, size_t *l0);

/* Backward pass after mimo_graph_loss: ADDS d loss / d params into grads. */
void mimo_graph_backward(mimo_graph *g, const mimo_real *params,
                         mimo_real *grads, int b);

/* Called after each layer's backward with the layer name and how many
 * values at the front of the gradient buffer are now final (parameters
 * lie in reverse topological order, so this prefix only grows). */
typedef void (*mimo_backward_hook)(void *user, const char *layer, size_t done);

/* mimo_graph_backward with a hook (may be NULL) after every layer. */
void mimo_graph_backward_hooked(mimo_graph *g, const mimo_real *params,
                                mimo_real *grads, int b,
                                mimo_backward_hook hook, void *user);


/* A trained table whose gradient is row-sparse: backward adds into it
 * only in the rows that the ids its readers (MIMO_KIND_ROW_SPARSE:
 * embedding, embedding_bag) read name; every other row of its gradient
 * stays as it was (zero after the exchange's begin_step). */
typedef struct {
    size_t off;           /* its first value in the gradient buffer */
    int rows, width;      /* (rows, width) values */
    size_t max_touched;   /* at most this many rows in a backward of up
                           * to max_batch rows */
} mimo_sparse_table;

/* The row-sparse tables of g, each once (a table shared by several
 * layers too; frozen ones are not trained, so not here): the first cap
 * into out; returns how many there are. */
int mimo_graph_sparse_tables(const mimo_graph *g, mimo_sparse_table *out, int cap);
/* The distinct rows of t that a backward over the b rows of the inputs
 * last given to forward added into (ids out of range left out: that
 * backward faulted), written into rows (t->max_touched values at most),
 * in the order met. mark: t->rows bytes, all zero, and zero again on
 * return. Returns how many. */
size_t mimo_graph_touched_rows(const mimo_graph *g, const mimo_sparse_table *t,
                               int b, unsigned char *mark, int32_t *rows);

/* Head h's output of the last forward, (b, units); owned by the graph. */
const mimo_real *mimo_graph_output(const mimo_graph *g, int h);
/* d loss / d input i, (b, width), when compiled with input_grads. */
const mimo_real *mimo_graph_input_grad(const mimo_graph *g, int i);

#endif
