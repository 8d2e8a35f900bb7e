/* kind.h — what a layer kind is: one file under src/core/layers/ fills one
 * mimo_kind (its config keys and defaults, shape inference, parameter
 * tensors, buffers, forward and backward), and kind.c lists every kind in
 * one table. The config parser reads a kind's keys from its mimo_arg
 * table; the graph compiler calls its functions. Adding a kind is one new
 * file, one row in kind.c's table, and its tests. */
#ifndef MIMO_CORE_KIND_H
#define MIMO_CORE_KIND_H

#include <stddef.h>

#include "core/graph_impl.h"

typedef struct mimo_onnx mimo_onnx; /* core/onnx.h */

/* ---- settings: one mimo_arg per config key ------------------------------ */

typedef enum {
    MIMO_ARG_INT,    /* int; bounds lo..hi */
    MIMO_ARG_REAL,   /* double; bounds lo..hi */
    MIMO_ARG_BOOL,   /* int 0/1 */
    MIMO_ARG_ACT,    /* mimo_act, by name */
    MIMO_ARG_INIT,   /* mimo_init: a name or {type, value, min, max} */
    MIMO_ARG_INTS,   /* mimo_ints: an int or a list of 1..MIMO_MAX_RANK */
    MIMO_ARG_CHOICE, /* int: the index of the name in choices */
    MIMO_ARG_NAME,   /* char * (owned by the spec): a layer name */
    MIMO_ARG_LAYER,  /* mimo_sublayer: a mapping {type: K, K's keys...}, K
                      * one of the kinds named in choices (bidirectional's
                      * `layer`); owned by the settings struct */
    MIMO_ARG_REALS   /* mimo_reals: a list of 1..MIMO_MAX_REALS numbers */
} mimo_arg_type;

typedef struct {
    int n;
    int v[MIMO_MAX_RANK];
} mimo_ints;

/* A short list of numbers kept in the settings struct itself (copied with
 * it, nothing to free): discretization's bin_boundaries. */
#define MIMO_MAX_REALS 64
typedef struct {
    int n;
    double v[MIMO_MAX_REALS];
} mimo_reals;

typedef struct {
    const char *key;
    size_t offset;              /* of the value in the kind's args struct */
    mimo_arg_type type;
    int required;
    double lo, hi;              /* INT, REAL, INTS, REALS: bounds, inclusive ... */
    int excl;                   /* ... but 1: lo excluded, 2: hi, 3: both */
    const char *expect;         /* INT, REAL, INTS: "an integer > 0" */
    const char *const *choices; /* CHOICE: names, NULL-terminated; LAYER:
                                 * the kinds it may be */
} mimo_arg;

/* A layer inside a layer's settings (MIMO_ARG_LAYER): its kind and that
 * kind's settings struct (NULL until the config gives it). */
typedef struct {
    const struct mimo_kind *kind;
    void *args;
} mimo_sublayer;

/* The key and offset of a field of a kind's settings struct T, for the
 * designated initializer of its mimo_arg: the key is the field's name.
 *   {MIMO_ARG(dense_args, units), .type = MIMO_ARG_INT, .required = 1,
 *    .lo = 1, .hi = INT_MAX, .expect = "an integer > 0"} */
#define MIMO_ARG(T, field) .key = #field, .offset = offsetof(T, field)

/* ---- the kind ------------------------------------------------------------ */

/* Properties of a kind that the rest of the library asks about (never by
 * the kind's name: a new kind with the property just sets the flag). */
enum {
    /* the node ends in an activation (n->act) with its pre-activation in
     * n->z, and a head's loss may write the gradient of z into n->dz
     * itself (sigmoid or softmax fused with cross-entropy) */
    MIMO_KIND_LOGITS = 1u << 0,
    /* the output is the first input's data in another shape (flatten,
     * reshape): the node's y and dy are its parent's (no copy; forward
     * sets n->y, and the graph points n->dy at the parent's) */
    MIMO_KIND_VIEW = 1u << 1,
    /* the output is a probability distribution (masked_softmax), fit for
     * a cross-entropy head without from_logits */
    MIMO_KIND_PROBABILITIES = 1u << 2,
    /* in training, forward and backward reduce over the ranks
     * (mimo_graph_reduce): every rank runs them, with or without rows */
    MIMO_KIND_COLLECTIVE = 1u << 3,
    /* a second input, when given, is a 0/1 mask (masked_softmax): an
     * input of the model that feeds it there is checked as a mask when a
     * dataset is opened (mimo_graph_input_mask) */
    MIMO_KIND_MASK_INPUT = 1u << 4,
    /* its first tensor is a table (rows, width) and backward adds into
     * its gradient only in the rows named by the ids of its first input
     * (embedding, embedding_bag): the exchange may sum just those rows
     * over the ranks (mimo_graph_touched_rows) */
    MIMO_KIND_ROW_SPARSE = 1u << 5,
};

/* What a kind does with the mask its input carries (core/kind.h's
 * masking; ARCHITECTURE.md, Masks), or'ed: */
enum {
    MIMO_MASK_PASS = 1u << 0, /* its output keeps the input's time axis: it
                               * carries the same mask on */
    MIMO_MASK_USE = 1u << 1,  /* it reads the mask (p->mask) */
    MIMO_MASK_OWN = 1u << 2,  /* its output carries a mask it makes itself
                               * (n->mask, set in buffers) */
};

/* Whether node n's kind has flag f (an input node has no kind: none). */
#define MIMO_KIND_HAS(n, f) ((n)->kind && ((n)->kind->flags & (f)))

struct mimo_kind {
    const char *name;          /* in configs: "dense" */
    /* other names it answers to (Keras': "batch_normalization"); case and
     * underscores never matter; NULL-terminated, may be NULL */
    const char *const *aliases;
    const mimo_arg *args;      /* its config keys (besides type and from) */
    int n_args;
    size_t args_size;          /* its settings struct */
    /* Sets the defaults of a fresh settings struct (may be NULL: zeros). */
    void (*defaults)(void *args);
    /* After parsing: derived defaults and checks across keys; on an error
     * writes a message into err and returns -1 (may be NULL). */
    int (*finish)(void *args, char *err, size_t len);
    size_t node_size;          /* its per-node data (mimo_node.priv) */
    const char *dot_shape;     /* Graphviz node shape: "box", "hexagon" */
    unsigned flags;            /* what it is: MIMO_KIND_* below, or'ed */

    /* Compile time, in topological order: checks the number of inputs
     * (mimo_check_inputs), sets n->shape from the parents' shapes, and
     * n->act when the node ends in an activation; declares its parameter
     * tensors (mimo_node_add_tensor). On a mismatch writes a message
     * naming the layers into err and returns -1. */
    int (*infer)(mimo_graph *g, mimo_node *n, char *err, size_t len);
    /* Work buffers, after the parameters are laid out and every node's dy
     * is placed: takes them with mimo_arena_take, in a pass that only
     * counts (pointers NULL) and then one that assigns. NULL: y gets one
     * (B, width) buffer. */
    void (*buffers)(mimo_graph *g, mimo_node *n, mimo_arena *a);
    /* y = f(parents' y) on b rows. */
    void (*forward)(mimo_graph *g, mimo_node *n, const mimo_real *params,
                    int b);
    /* Adds into the parents' dy (those that have one) and into grads (the
     * parameter gradient): always adds, never updates params (the one
     * rule every backward keeps; the exchange applies the update). Called when n->dy is set
     * or a head's loss wrote n->dz (n->fused). */
    void (*backward)(mimo_graph *g, mimo_node *n, const mimo_real *params,
                     mimo_real *grads, int b);

    /* Optional. The columns [lo, hi) of the last axis of n's output whose
     * gradient some branch uses (default: all when n->dy is set). */
    void (*grad_span)(const mimo_graph *g, const mimo_node *n, int *lo,
                      int *hi);
    /* Optional: the text after the name in summaries ("dense(relu)"). */
    void (*describe)(const mimo_node *n, char *buf, size_t len);
    /* Optional: floating-point operations of one sample's forward and
     * backward in matrix products (for mimo bench). */
    double (*flops)(const mimo_graph *g, const mimo_node *n);
    /* Optional: values of the work buffers it takes for a batch of b rows
     * besides its output, pre-activation and their gradients (conv2d's
     * im2col patches); mimo summary and mimo bench report them. */
    size_t (*scratch)(const mimo_graph *g, const mimo_node *n, size_t b);
    /* Optional: frees what the node holds outside the graph's arenas
     * (conv2d's oneDNN primitives), before its priv is freed. */
    void (*release)(mimo_node *n);
    /* Optional: what n does with the mask its input carries (MIMO_MASK_*
     * or'ed, for its settings); 0 or NULL: it cannot honour a mask, and a
     * masked input is a config error naming it. */
    int (*masking)(const mimo_graph *g, const mimo_node *n);
    /* Optional: after the initializers filled n's tensors, adjusts them
     * (lstm's unit_forget_bias: ones in the forget gate's bias). */
    void (*init)(const mimo_node *n, mimo_real *params);
    /* Optional: the node reads integer ids of its first input, which
     * must lie in [0, bound) (checked when a dataset is opened); 0: any
     * integer (hashing). Only such a kind may read an int64 input
     * (mimo_node_wide: its values' bytes in the float slots). */
    long long (*id_bound)(const mimo_node *n);
    /* Optional (exporting a graph with a kind that has none is an error
     * naming the layer): the node in inference mode as ONNX operators
     * (core/onnx.h), from its parents' values in[0, n->n_in) (an id
     * reader's is the int32 input itself); returns its value's name, or
     * NULL with a message in err (or the builder's error). */
    const char *(*onnx)(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                        const char *const *in, char *err, size_t len);
    /* Optional: args_size bytes a fresh settings struct starts from,
     * before defaults (a plug-in kind's defaults: core/plugin_kind.c). */
    const void *initial;
    /* Optional: what the node takes from the training data of the model
     * input it reads, at a fresh start of `mimo train` (io/adapt.c): 0
     * nothing; MIMO_ADAPT_MOMENTS its state tensors `mean` and `variance`
     * (the last axis' size each: /preprocessing/<input>/mean, variance,
     * or computed over the training rows); MIMO_ADAPT_QUANTILES its state
     * tensor `bin_boundaries` (K - 1 values): the quantiles i/K of all
     * the input's training values. */
    int (*from_data)(const mimo_node *n);
    /* Optional: 1 when each value of the node's output is to be averaged
     * over each epoch's training rows (all ranks) into history.csv as
     * <layer>_mean_<j> (core/metrics.c; softmax's log_mean: a gate's mean
     * weight per expert). The node's width is at most MIMO_LOG_MEAN_MAX. */
    int (*log_mean)(const mimo_node *n);
    /* Optional: the node's output is integer ids in [0, ids_out(n))
     * (hashing's bins), read only by kinds that read ids (id_bound), as
     * their first input: graph.c checks it; ONNX and the PyTorch twin
     * carry it as int64. */
    long long (*ids_out)(const mimo_node *n);
    /* Optional: backward for nt heads at once (core/stacked.c): n->dy,
     * n->dz and the parents' dy point at the first of nt slices, each
     * (b, width) of its own node, one after another; grads[t] is head t's
     * gradient buffer, NULL for a head that does not reach n (its slices
     * hold zeros). The same sums as backward run once per slice. Returns
     * 0, or -1 with nothing added: then backward runs once per head. */
    int (*backward_stacked)(mimo_graph *g, mimo_node *n, const mimo_real *params,
                             mimo_real *const *grads, int nt, int b);
};

/* What a kind's from_data asks for. */
enum { MIMO_ADAPT_MOMENTS = 1, MIMO_ADAPT_QUANTILES = 2 };

/* The most values of one layer whose means history.csv logs. */
#define MIMO_LOG_MEAN_MAX 64

/* For infer: n must have min..max inputs (max 0: any); else a message
 * "<kind> layer 'name' takes ..." (plus hint, may be "") and -1. */
int mimo_check_inputs(const mimo_node *n, int min, int max, const char *hint,
                      char *err, size_t len);

/* The kind s names, Keras' way: its name or one of its aliases, in any
 * case, underscores or not ("Dense", "BatchNormalization"); or NULL. */
const mimo_kind *mimo_kind_find(const char *s);
/* The i-th kind: the table's, then those plug-ins registered
 * (core/plugin.c), in the order they were loaded; NULL past the end (for
 * listing names). */
const mimo_kind *mimo_kind_at(int i);
/* plugin.c: the i-th kind plug-ins registered, NULL past the end. */
const mimo_kind *mimo_plugin_kind_at(int i);
/* The arg of kind k for key, or NULL. */
const mimo_arg *mimo_kind_arg(const mimo_kind *k, const char *key);
/* A fresh settings struct with the kind's defaults (NULL: out of memory),
 * and its release (frees owned names too). */
void *mimo_kind_args_new(const mimo_kind *k);
/* A deep copy of a settings struct (a sharing layer takes its owner's). */
void *mimo_kind_args_copy(const mimo_kind *k, const void *args);
void mimo_kind_args_free(const mimo_kind *k, void *args);
/* Releases what the i-th setting of args owns (a name, a nested layer's
 * settings), not args itself. */
void mimo_kind_args_free_owned(const mimo_kind *k, void *args, int i);

/* The kinds, each defined in its own file under src/core/layers/. */
extern const mimo_kind mimo_kind_dense, mimo_kind_activation,
    mimo_kind_concat, mimo_kind_add, mimo_kind_subtract,
    mimo_kind_multiply, mimo_kind_average, mimo_kind_masked_softmax,
    mimo_kind_flatten, mimo_kind_reshape, mimo_kind_embedding,
    mimo_kind_dropout, mimo_kind_batch_norm, mimo_kind_layer_norm,
    mimo_kind_conv2d, mimo_kind_max_pool2d, mimo_kind_avg_pool2d,
    mimo_kind_global_avg_pool2d, mimo_kind_global_max_pool2d,
    mimo_kind_conv1d, mimo_kind_max_pool1d, mimo_kind_avg_pool1d,
    mimo_kind_global_avg_pool1d, mimo_kind_global_max_pool1d,
    mimo_kind_gru, mimo_kind_lstm, mimo_kind_normalization,
    mimo_kind_embedding_bag, mimo_kind_hashing, mimo_kind_stack, mimo_kind_softmax,
    mimo_kind_weighted_sum, mimo_kind_dot,
    mimo_kind_multi_head_attention,
    mimo_kind_bidirectional, mimo_kind_position_embedding,
    mimo_kind_discretization;

#endif
