/* graph.h — a compiled network as its users see it: compile a spec, ask
 * for its inputs, heads, parameter tensors and layers (summaries, tools
 * that read checkpoints by tensor name). Running it (forward, loss,
 * backward) is the library's business: core/graph.h. */
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

/* Metric i (bit 1 << i, named by mimo_metric_name) of a finished head. */
MIMO_API double mimo_head_metric(const mimo_head_stats *s, int i);

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
/* The float slots of one row of input i: its shape's size, twice that
 * for dtype: int64 (each value's 8 bytes, int64_t in the host's order, in
 * two float32 slots: an array of int64 viewed as float32). */
MIMO_API int mimo_graph_input_width(const mimo_graph *g, int i);
MIMO_API const mimo_shape *mimo_graph_input_shape(const mimo_graph *g, int i);
/* Whether input i holds integer ids (dtype: int32 or int64); *bound:
 * they must lie in [0, bound) for the layers that read them (0: no such
 * layer, or only layers that take any integer: hashing). */
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

#ifdef __cplusplus
}
#endif
#endif
