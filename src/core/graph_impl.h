/* graph_impl.h — the inside of a compiled graph, shared by graph.c (compile
 * and run loops), ops.c (the op table), act.c, loss.c and summary.c.
 * Not installed: users see only include/mimo/graph.h. */
#ifndef MIMO_GRAPH_IMPL_H
#define MIMO_GRAPH_IMPL_H

#include <stddef.h>

#include "mimo/graph.h"

/* Elementwise loops are threaded only above this many elements, so small
 * layers never pay for waking threads that OpenBLAS also uses. */
#define MIMO_PAR_MIN 32768

#ifdef MIMO_REAL_DOUBLE
#define MIMO_GEMM cblas_dgemm
#else
#define MIMO_GEMM cblas_sgemm
#endif

#define MIMO_NODE_INPUT (-1)

typedef struct {
    int type;              /* mimo_layer_type, or MIMO_NODE_INPUT */
    const char *name;
    int spec_index;        /* index into spec inputs or layers */
    int width;             /* output features */
    int n_in;
    int *in;               /* parent node indices (topological) */
    int n_consumers;
    mimo_act act;          /* dense and activation nodes */
    mimo_real alpha;
    int use_bias;
    int in_width;          /* dense: features of the input */
    size_t w_off, b_off;   /* dense: offsets of kernel (in, out), bias (out) */
    int dx_lo, dx_hi;      /* dense: the input columns that need a gradient
                            * (a concat of raw inputs and branches needs
                            * only its branches' columns); empty if none */
    int fused;             /* head loss writes dz directly (from logits) */
    int head;              /* head index, or -1 */
    mimo_real *y;          /* (B, width) output; inputs: caller's buffer */
    mimo_real *z;          /* (B, width) pre-activation (dense, activation) */
    mimo_real *dz;         /* (B, width) scratch gradient of z, or NULL */
    mimo_real *dy;         /* (B, width) gradient of y, NULL if not needed */
} mimo_node;

typedef struct {
    int node;
    const mimo_output_spec *spec;
    int units, target_width;
} mimo_head;

struct mimo_graph {
    const mimo_spec *spec;
    int max_batch;
    int n_nodes;
    mimo_node *nodes;      /* topological order */
    int n_inputs;
    int *input_node;       /* config input i -> node */
    int n_heads;
    mimo_head *heads;
    size_t n_params;
    mimo_real *arena;      /* y, z, dz buffers */
    mimo_real *grad_arena; /* all dy buffers: zeroed by one memset */
    size_t grad_arena_len;
    int *tensor_node;      /* dense nodes in topological order */
    int n_dense;
    mimo_real *loss_scratch; /* one row of the widest head */
    mimo_real *col_scratch;  /* one row of the widest layer */
    mimo_real grad_alpha;    /* backward adds grad_alpha x the gradient */
};

/* vec.c: x[0, n) = 0, threaded when large. */
void mimo_vec_zero(mimo_real *x, size_t n);

/* One row of the op table: shape inference, forward, backward. */
typedef struct {
    /* Sets n->width from the parents' widths; on a mismatch writes a
     * message into err and returns -1. */
    int (*infer)(const mimo_graph *g, mimo_node *n, char *err, size_t len);
    void (*forward)(mimo_graph *g, mimo_node *n, const mimo_real *params,
                    int b);
    /* Adds into the parents' dy (those that have one) and into grads. */
    void (*backward)(mimo_graph *g, mimo_node *n, const mimo_real *params,
                     mimo_real *grads, int b);
} mimo_op;

extern const mimo_op mimo_ops[MIMO_LAYER_COUNT];

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

/* loss.c: loss of one head; see mimo_graph_loss. */
int mimo_head_loss(const mimo_graph *g, const mimo_head *h,
                   const mimo_real *t, int b, double grad_scale,
                   mimo_head_stats *st);
/* Whether a head with this loss after this activation can be computed
 * from the logits (sigmoid+BCE, softmax+CCE/sparse CCE). */
int mimo_loss_fusable(mimo_loss l, mimo_act a);

#endif
