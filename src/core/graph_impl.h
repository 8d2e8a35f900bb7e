/* graph_impl.h — the inside of a compiled graph, shared by graph.c (compile
 * and run loops), the layer kinds (core/layers/), act.c, loss.c and
 * summary.c. Not installed: users see only include/mimo/graph.h. */
#ifndef MIMO_CORE_GRAPH_IMPL_H
#define MIMO_CORE_GRAPH_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/graph.h"
#include "mimo/rng.h"

/* Elementwise loops are threaded only above this many elements, so small
 * layers never pay for waking threads that OpenBLAS also uses. */
#define MIMO_PAR_MIN 32768

/* MIMO_GEMM takes cblas_sgemm's arguments: OpenBLAS's, or with oneDNN
 * mimo_sgemm (core/dnnl_ctx.c). */
#ifdef MIMO_REAL_DOUBLE
#define MIMO_GEMM cblas_dgemm
#elif defined(MIMO_DNNL)
/* MIMO_GEMM: cblas_sgemm's row-major arguments.
 * Products of at least 2^18 multiply-adds run on oneDNN's dnnl_sgemm,
 * whose JIT kernels beat OpenBLAS 0.3.21's on the batch-sized products
 * of dense layers (smaller ones stay on OpenBLAS: its per-call cost is
 * lower), when dnnl_sgemm is safe in this process: oneDNN 2.6's f32 gemm
 * kernels point the stack pointer at a heap workspace while they run, so
 * a signal handler running on a thread inside one writes its frame into
 * the heap (oneDNN issue 4845, fixed in 3.11). Safe means: no signal
 * that may come from outside (all but the faults a thread makes itself)
 * has a handler unless it is blocked in the calling thread, whose mask
 * the threads it starts inherit; decided at the first call, for the
 * process. `mimo train` takes its stop signals on a thread of its own
 * (apps/cmd_train.c), `bench`, `eval`, `predict` install none; a
 * program embedding the library that handles SIGINT on the computing
 * thread (Python) keeps OpenBLAS. The choice depends on the shape and
 * the process only, so a run repeats itself exactly. */
void mimo_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha,
                const float *a, int lda, const float *b, int ldb, float beta, float *c,
                int ldc);
/* Whether mimo_sgemm uses dnnl_sgemm in this process (deciding it at
 * the first call), and the test it decides by, on the calling thread. */
int mimo_sgemm_dnnl(void);
int mimo_dnnl_signal_safe(void);
#define MIMO_GEMM mimo_sgemm
#else
#define MIMO_GEMM cblas_sgemm
#endif

/* A parameter tensor of a node: a block of the flat parameter buffer. */
typedef struct {
    const char *name;      /* "kernel", "bias", ... (a static string) */
    mimo_shape shape;
    size_t size;           /* elements */
    size_t off;            /* into the flat buffer */
    mimo_init init;
    double fan_in, fan_out;
    int state;             /* never trained: a statistic (moving_mean) */
    int trained;           /* has a gradient and optimizer moments (not
                            * state, not in a trainable: false layer) */
    int shared;            /* the block of another node's tensor (shares) */
} mimo_tensor;

/* Work buffers are taken from one allocation in two passes: counting
 * (base NULL, take returns NULL) and assigning. */
typedef struct {
    mimo_real *base;
    size_t used;
    int overflow;
} mimo_arena;

typedef struct mimo_node mimo_node;

struct mimo_node {
    const mimo_kind *kind; /* NULL: a model input */
    const char *name;
    const void *args;      /* the kind's settings (the spec's) */
    int spec_index;        /* index into spec inputs or layers */
    mimo_shape shape;      /* per sample */
    int width;             /* elements per sample */
    int n_in;
    int *in;               /* parent node indices (topological) */
    int n_consumers;
    int head;              /* head index, or -1 */
    /* the activation the node ends with (linear if none): a head's loss
     * can fuse sigmoid or softmax, computing from the logits z */
    mimo_act act;
    mimo_real alpha;
    int fused;             /* the head's loss writes dz directly */
    int n_tensors;
    mimo_tensor *tensors;
    mimo_real *y;          /* (B, width) output; inputs: the caller's rows */
    mimo_real *dy;         /* (B, width) gradient of y, NULL if not needed */
    mimo_real *z, *dz;     /* pre-activation and its gradient, for kinds
                            * that end in an activation (may alias y, dy) */
    void *priv;            /* the kind's own data (kind->node_size bytes) */
    /* (B, T) per sample: 1 a timestep, 0 padding, for the time axis (the
     * first) of y; NULL: no mask. The mask of the node mask_src, which
     * made it (embedding with mask_zero), or -1 */
    const mimo_real *mask;
    int mask_src;
};

typedef struct {
    int node;
    const mimo_output_spec *spec;
    int units, target_width;
    int weighted;          /* weighs its rows (mimo_graph_head_weighted) */
    mimo_real *class_w;    /* class_weight by class index (units, or 2 for
                            * a binary head), or NULL */
} mimo_head;

struct mimo_graph {
    const mimo_spec *spec;
    int max_batch;
    int bf16;              /* the products in bf16 (train.precision: bf16
                            * on a CPU with native bf16: core/bf16.h);
                            * decided before the kinds' infer */
    int n_nodes;
    mimo_node *nodes;      /* topological order */
    int n_inputs;
    int *input_node;       /* config input i -> node */
    int n_heads;
    mimo_head *heads;
    size_t n_params;       /* all parameters: [0, n_trained) trained, in
                            * backward's order; then what is not trained */
    size_t n_trained;
    int n_shared;          /* tensors used by more than one layer */
    int n_log_var;         /* uncertainty weighting: s_h at [0, n_heads) */
    int n_gradnorm;        /* gradnorm: the heads' weights at [0, n_heads) */
    size_t gradnorm_l0;    /* and their first losses there (not trained) */
    size_t *done_after;    /* per node: the trained prefix final after its
                            * backward (for the exchange's layer_done) */
    mimo_real *arena;      /* the kinds' work buffers */
    mimo_real *grad_arena; /* all dy buffers: zeroed by one memset */
    size_t grad_arena_len;
    int *tensor_node;      /* nodes with parameters, topological order */
    int n_param_nodes;
    int (*tensor_ref)[2];  /* every parameter tensor in that order: (node,
                            * index in its tensors), for O(1) look-ups */
    int n_tensor_refs;
    /* the mode of the next forward and backward (mimo_graph_set_training) */
    int training;          /* 0: inference */
    const uint64_t *rows;  /* training: the global rows of the batch */
    long epoch;
    int n_collective;      /* layers that reduce over the ranks in training */
    mimo_reduce_fn reduce; /* sums doubles over the ranks; NULL: one process */
    void *reduce_user;
    int writes_state;      /* this rank updates the untrained state */
    int fault;             /* an error met inside forward/backward */
    double *t_layer;       /* when timing (mimo_graph_time_layers): seconds
                            * of each node's forward [k] and backward
                            * [n_nodes + k] */
    mimo_real *loss_scratch; /* one row of the widest head */
    mimo_real *prob_scratch; /* another: a from_logits head's probabilities */
    mimo_real **row_w;     /* per head (max_batch, weighted heads only) and */
    double *loss_scale;    /* 2 n_heads: for mimo_graph_loss */
    struct mimo_diag *diag; /* per-head gradient diagnostics, or NULL */
    struct mimo_stacked *stacked; /* the heads' stacked backward, or NULL */
};

/* The number of bits set in x (a set of heads). */
static inline int mimo_popcount64(uint64_t x)
{
    int c = 0;
    for (; x; x &= x - 1)
        c++;
    return c;
}

/* graph.c: H[k] = the heads whose loss node k's output feeds (bit h for
 * head h; H zeroed by the caller, n_nodes values), propagated from the
 * heads up to their ancestors. At most 64 heads. */
void mimo_graph_head_sets(const mimo_graph *g, uint64_t *H);

/* diag.c: the backward's brackets when g->diag is set: before the first
 * node, around node k's backward, after the last (b rows). */
void mimo_diag_begin(mimo_graph *g, int b);
void mimo_diag_before(mimo_graph *g, int k, int b);
void mimo_diag_after(mimo_graph *g, int k, int b);
void mimo_diag_end(mimo_graph *g, int b);
void mimo_graph_diag_free(mimo_graph *g);

/* stacked.c: under the stacked backward (mimo_graph_backward_stacked),
 * where head t's part of node k's output gradient lives for b rows: its
 * slice in the trunk (the nodes two heads or more reach; a view: its
 * parent's), node k's own dy elsewhere. */
mimo_real *mimo_stacked_dy(const mimo_graph *g, int k, int t, int b);
void mimo_graph_stacked_free(mimo_graph *g);

#define MIMO_PARENT(g, n, k) (&(g)->nodes[(n)->in[k]])

/* The float slots an int64 value takes in an input's rows: its 8 bytes
 * copied as they are (2 slots of float32, 1 of the double build). */
#define MIMO_I64_SLOTS ((int)(sizeof(int64_t) / sizeof(mimo_real)))

/* Whether node p is a model input of dtype int64: its y holds each
 * value's 8 bytes (int64_t, the host's order) in MIMO_I64_SLOTS slots,
 * (B, width) int64 values; only the kinds that read ids read it, through
 * mimo_node_id. */
int mimo_node_wide(const mimo_graph *g, const mimo_node *p);

/* The i-th value (of b * width) of a wide input node p, exactly. */
static inline int64_t mimo_node_i64(const mimo_node *p, size_t i)
{
    int64_t v;
    memcpy(&v, (const char *)p->y + i * sizeof v, sizeof v);
    return v;
}

/* graph.c: declares a parameter tensor of n during infer (name is a static
 * string); returns its index in n->tensors, or -1 out of memory. A state
 * tensor is never trained (batch_norm's moving statistics): the kind
 * updates it itself (only when g->writes_state). */
int mimo_node_add_tensor(mimo_node *n, const char *name, const mimo_shape *shape,
                         mimo_init init, double fan_in, double fan_out);
int mimo_node_add_state(mimo_node *n, const char *name, const mimo_shape *shape,
                        mimo_init init);
/* graph.c: len values from the arena (see mimo_arena); n doubles. */
mimo_real *mimo_arena_take(mimo_arena *a, size_t len);
double *mimo_arena_take_doubles(mimo_arena *a, size_t n);
/* graph.c: the columns of node k's output whose gradient is used. */
void mimo_node_grad_span(const mimo_graph *g, int k, int *lo, int *hi);
/* Positions per sample for a kind acting on the last axis: the product
 * of the other axes (1 for rank 1); and the last axis. */
static inline int mimo_shape_rows(const mimo_shape *s)
{
    int r = 1;
    for (int k = 0; k + 1 < s->rank; k++)
        r *= s->dim[k];
    return r;
}
static inline int mimo_shape_last(const mimo_shape *s) { return s->dim[s->rank - 1]; }

/* graph.c: for kinds, during forward or backward: v[0, n) summed over
 * the ranks in place (nothing on one process); a failure is kept in
 * g->fault for mimo_graph_status. */
void mimo_graph_reduce(mimo_graph *g, double *v, int n);
/* graph.c: keeps the first error met inside forward/backward. */
void mimo_graph_fault(mimo_graph *g, int rc);

/* vec.c: x[0, n) = 0, threaded when large. */
void mimo_vec_zero(mimo_real *x, size_t n);

/* act.c: y = act(z + bias) row by row, z updated to z + bias (bias may be
 * NULL; y may equal z: then z + bias is not kept). z, y are (b, n). */
void mimo_act_forward(mimo_act a, mimo_real alpha, const mimo_real *bias,
                      mimo_real *z, mimo_real *y, int b, int n);
/* dz = dy * act'(z) (softmax: the full Jacobian-vector product). z may
 * be y for the activations of mimo_act_derivative_from_y, or NULL. */
void mimo_act_backward(mimo_act a, mimo_real alpha, const mimo_real *z,
                       const mimo_real *y, const mimo_real *dy,
                       mimo_real *dz, int b, int n);
/* Whether act' can be computed from the output alone. */
int mimo_act_derivative_from_y(mimo_act a, mimo_real alpha);
/* Keras' alpha when a config gives none: leaky_relu 0.3, elu 1.0. */
double mimo_act_alpha_default(mimo_act a);

/* loss.c: loss of one head, rows weighted by w (NULL: all 1); see
 * mimo_graph_loss_weighted. want_grad: seed backward with scale x the
 * gradient. */
int mimo_head_loss(const mimo_graph *g, const mimo_head *h,
                   const mimo_real *t, const mimo_real *w, int b,
                   int want_grad, double scale, mimo_head_stats *st);
/* loss.c: head h's row weights (see mimo_graph_weigh); *sum their sum. */
int mimo_head_weigh(const mimo_head *h, const mimo_real *t, const mimo_real *sw,
                    int b, mimo_real *w, double *sum);
/* loss.c: the probabilities of a from_logits head's row z into p. */
void mimo_head_probabilities(const mimo_head *h, const mimo_real *z, mimo_real *p);
/* Whether a head with this loss after this activation can be computed
 * from the logits (sigmoid+BCE, softmax+CCE/sparse CCE). */
int mimo_loss_fusable(mimo_loss l, mimo_act a);

/* init.c: fills p[0, len) with initializer `in`, drawn from r (the
 * scaled initializers use the fans). */
void mimo_init_fill(mimo_rng *r, mimo_init in, mimo_real *p, size_t len,
                    double fan_in, double fan_out);

#endif
