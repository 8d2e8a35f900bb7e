/* graph.h — a compiled network: topologically sorted nodes with inferred
 * shapes, a flat parameter layout, and batched forward/backward passes.
 * The graph owns its activation buffers (sized for max_batch rows at
 * compile time); it does not own parameters, gradients or data: callers
 * pass the flat buffers in. Nothing here knows MPI or HDF5. */
#ifndef MIMO_GRAPH_H
#define MIMO_GRAPH_H

#include "mimo/api.h"

#include <stddef.h>
#include <stdint.h>

#include "mimo/real.h"
#include "mimo/spec.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mimo_graph mimo_graph;

/* One head's numbers. From mimo_graph_loss: the batch's sums -- loss
 * (sum over labelled rows of v * the row's loss), weight (sum of v) and
 * labelled (rows with a label). In a mimo_stats after mimo_stats_finish:
 * the head's loss (loss / weight) and each metric it asks for over its
 * labelled rows (NaN without any), weight and labelled as totals, and the
 * weight of the head in the total loss. */
typedef struct {
    double loss;
    double acc, mse, mae;
    double weight, labelled;
    double auc, precision, recall, f1, top_k, r2;
    double task_weight;
} mimo_head_stats;

/* Compiles spec into a graph for batches of up to max_batch rows. Resolves
 * `from` and output names, rejects cycles, unused layers and inputs, and
 * shape mismatches, naming FILE:LINE:COL and the layers. With input_grads,
 * backward also computes the gradient of the loss w.r.t. every input
 * (tests use this). The graph keeps a pointer to spec: keep it alive. */
MIMO_API int mimo_graph_compile(const mimo_spec *spec, int max_batch, int input_grads,
                       mimo_graph **out);
/* Frees the graph and sets *g to NULL. */
MIMO_API void mimo_graph_free(mimo_graph **g);

/* All parameters; the first mimo_graph_trained_count of them are trained
 * (have gradients and optimizer moments), the rest are not (batch_norm's
 * moving statistics, the layers marked trainable: false). */
MIMO_API size_t mimo_graph_param_count(const mimo_graph *g);
MIMO_API size_t mimo_graph_trained_count(const mimo_graph *g);
/* Whether some layer shares another's parameters (`shares`). */
MIMO_API int mimo_graph_shares(const mimo_graph *g);
MIMO_API int mimo_graph_max_batch(const mimo_graph *g);
MIMO_API const mimo_spec *mimo_graph_spec(const mimo_graph *g);

/* Model inputs, in config order. */
MIMO_API int mimo_graph_n_inputs(const mimo_graph *g);
MIMO_API const char *mimo_graph_input_name(const mimo_graph *g, int i);
MIMO_API int mimo_graph_input_width(const mimo_graph *g, int i);
MIMO_API const mimo_shape *mimo_graph_input_shape(const mimo_graph *g, int i);
/* Whether input i holds integer ids (dtype: int32); *bound: they must lie
 * in [0, bound) for the layers that read them (0: no such layer). */
MIMO_API int mimo_graph_input_ids(const mimo_graph *g, int i, long long *bound);
/* Whether input i is the mask of a masked_softmax (its values must be 0
 * or 1, with a 1 in every softmax group). */
MIMO_API int mimo_graph_input_mask(const mimo_graph *g, int i);

/* Heads, in config order. A head's target has target_width columns
 * (1 for sparse_categorical_crossentropy, else units). */
MIMO_API int mimo_graph_n_heads(const mimo_graph *g);
MIMO_API const mimo_output_spec *mimo_graph_head_spec(const mimo_graph *g, int h);
MIMO_API int mimo_graph_head_units(const mimo_graph *g, int h);
MIMO_API int mimo_graph_head_target_width(const mimo_graph *g, int h);

/* Parameter tensors (a dense layer's kernel (in, out) and bias (out), ...),
 * in topological order of their layers, each layer's in its own order; a
 * layer that shares another's has none of its own.
 * offset is into the flat buffer; shape has 1 to MIMO_MAX_RANK axes. */
typedef struct {
    const char *layer;
    const char *name;     /* "kernel", "bias", ... */
    size_t offset, size;
    mimo_shape shape;
    int trainable;        /* trained: it has gradients and optimizer moments */
} mimo_param_info;
MIMO_API int mimo_graph_n_tensors(const mimo_graph *g);
MIMO_API mimo_param_info mimo_graph_tensor(const mimo_graph *g, int k);

/* Floating-point operations of one sample's forward and backward in the
 * matrix products (multiply-adds count 2): what mimo bench compares with
 * the sgemm rate. */
MIMO_API double mimo_graph_flops(const mimo_graph *g);

/* The nodes (inputs and layers) in topological order: name and kind
 * ("input", "dense", ...). */
MIMO_API int mimo_graph_n_nodes(const mimo_graph *g);
MIMO_API const char *mimo_graph_node_name(const mimo_graph *g, int k);
MIMO_API const char *mimo_graph_node_kind(const mimo_graph *g, int k);

/* Timing of each layer's forward and backward (for mimo bench): on adds
 * up seconds per node from now on (0 or MIMO_ENOMEM); layer_time reads
 * node k's (0 when off). Nodes are topologically sorted: see
 * mimo_graph_node_name. */
MIMO_API int mimo_graph_time_layers(mimo_graph *g, int on);
MIMO_API void mimo_graph_layer_time(const mimo_graph *g, int k, double *fwd,
                                    double *bwd);

/* Fills params (param_count values) with each layer's initializers, drawn
 * in topological order from a PRNG seeded with seed. */
MIMO_API void mimo_graph_init_params(const mimo_graph *g, mimo_real *params,
                            uint64_t seed);

/* Training mode for the following forwards and backwards: dropout draws
 * each sample's mask from (seed, epoch, its global row rows[r], layer),
 * batch_norm normalizes with the statistics of the global batch (summed
 * over the ranks with the reduce function) and updates its moving ones.
 * rows (b values) must stay valid until backward. Inference mode (after
 * compile, or mimo_graph_set_inference): dropout is the identity and
 * batch_norm uses its moving statistics. */
MIMO_API void mimo_graph_set_training(mimo_graph *g, const uint64_t *rows,
                                      long epoch);
MIMO_API void mimo_graph_set_inference(mimo_graph *g);

/* Sums n doubles over the ranks, in place (0, or an error code). */
typedef int (*mimo_reduce_fn)(void *user, double *v, int n);
/* Used by layers whose statistics span the global batch (batch_norm).
 * fn NULL: one process. writes_state 0: another rank of the node updates
 * the untrained state this rank's parameters share (moving statistics of
 * node-shared parameters). */
MIMO_API void mimo_graph_set_reduce(mimo_graph *g, mimo_reduce_fn fn, void *user,
                                    int writes_state);
/* Whether some layer reduces over the ranks in training mode: then every
 * rank must run forward and backward each step, also with no rows. */
MIMO_API int mimo_graph_collective(const mimo_graph *g);
/* The first error met inside forward or backward since the last call (an
 * id out of range, a failed reduction), 0 if none; clears it. */
MIMO_API int mimo_graph_status(mimo_graph *g);

/* Forward pass over b <= max_batch rows. inputs[i] is (b, width_i),
 * row-major, in input order; it must stay valid until backward. */
MIMO_API void mimo_graph_forward(mimo_graph *g, const mimo_real *params,
                        const mimo_real *const *inputs, int b);

/* Row weights. A head whose spec has `missing`, `sample_weight` or
 * `class_weight` weighs its rows: v = sample weight x class weight of
 * the row's class (each 1 when not given), or MIMO_UNLABELLED for a row
 * without a label. Other heads weigh every row 1. */
#define MIMO_UNLABELLED ((mimo_real)-1)
MIMO_API int mimo_graph_head_weighted(const mimo_graph *g, int h);
/* For each weighted head: w[h][r] = the weight of row r of targets[h]
 * (b, target_width_h), with sw[h] its sample weights (b values; sw or
 * sw[h] NULL: 1), and sums[h] = the sum of w[h] over its labelled rows;
 * for the others sums[h] = b and w[h] is not touched. Returns 0, or
 * MIMO_EINVAL for a target with some but not all units missing. */
MIMO_API int mimo_graph_weigh(const mimo_graph *g, const mimo_real *const *targets,
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
MIMO_API int mimo_graph_loss_weighted(mimo_graph *g, const mimo_real *const *targets,
                                      const mimo_real *const *w, int b,
                                      const double *scale, mimo_head_stats *stats);
/* The same with the weights of missing labels and class weights (no
 * sample weights) and scale[h] = weight_h * grad_scale, no gradient when
 * grad_scale is 0: sum_h weight_h * sum_rows loss * grad_scale (use
 * 1/global batch). */
MIMO_API int mimo_graph_loss(mimo_graph *g, const mimo_real *const *targets, int b,
                    double grad_scale, mimo_head_stats *stats);

/* train.loss_weighting: uncertainty -- the learned s_h of the heads are
 * the first n_heads trained parameters (tensor loss_weighting/log_var);
 * 0 otherwise. */
MIMO_API int mimo_graph_log_vars(const mimo_graph *g);

/* Backward pass after mimo_graph_loss: ADDS d loss / d params into grads. */
MIMO_API void mimo_graph_backward(mimo_graph *g, const mimo_real *params,
                         mimo_real *grads, int b);

/* Called after each layer's backward with the layer name and how many
 * values at the front of the gradient buffer are now final (parameters
 * lie in reverse topological order, so this prefix only grows). */
typedef void (*mimo_backward_hook)(void *user, const char *layer, size_t done);

/* mimo_graph_backward with a hook (may be NULL) after every layer. */
MIMO_API void mimo_graph_backward_hooked(mimo_graph *g, const mimo_real *params,
                                mimo_real *grads, int b,
                                mimo_backward_hook hook, void *user);


/* Head h's output of the last forward, (b, units); owned by the graph. */
MIMO_API const mimo_real *mimo_graph_output(const mimo_graph *g, int h);
/* d loss / d input i, (b, width), when compiled with input_grads. */
MIMO_API const mimo_real *mimo_graph_input_grad(const mimo_graph *g, int i);

#ifdef __cplusplus
}
#endif
#endif
