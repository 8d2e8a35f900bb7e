/* discretization.c — numbers into buckets (Keras' Discretization with
 * bin_boundaries): for boundaries b_0 < ... < b_{K-1}, the bucket of x is
 * the count of boundaries <= x, an id in [0, K] (bins (-inf, b_0),
 * [b_0, b_1), ..., [b_{K-1}, inf)), as TensorFlow's Bucketize. The
 * boundaries are rounded to mimo_real first and compared in it, as the
 * ONNX export and the PyTorch twin compare (a boundary of 0.1 is
 * 0.1f). output_mode int: the ids as values of the input's shape (a
 * float holding an integer: mimo's tensors are reals, so a dense or a
 * head reads them; an embedding reads int32 model inputs only);
 * one_hot: a one-hot vector of K + 1 per value, appended as a last axis
 * (Keras: a last axis of 1 is replaced), which a dense turns into an
 * embedding of the buckets. Piecewise constant: no gradient. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/kind.h"
#include "core/onnx.h"

typedef struct {
    mimo_reals bin_boundaries;
    int output_mode;     /* index in mode_choices */
} discretization_args;

static const char *const mode_choices[] = {"int", "one_hot", NULL};

static const mimo_arg discretization_keys[] = {
    {MIMO_ARG(discretization_args, bin_boundaries), .type = MIMO_ARG_REALS,
     .required = 1, .lo = -HUGE_VAL, .hi = HUGE_VAL, .excl = 3,
     .expect = "a list of increasing finite numbers"},
    {MIMO_ARG(discretization_args, output_mode), .type = MIMO_ARG_CHOICE,
     .choices = mode_choices},
};

typedef struct {
    mimo_real b[MIMO_MAX_REALS]; /* the boundaries as compared */
    int k;
} discretization_node;

static int discretization_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const discretization_args *a = n->args;
    discretization_node *d = n->priv;
    if (mimo_check_inputs(n, 1, 1, "", err, len))
        return -1;
    d->k = a->bin_boundaries.n;
    for (int i = 0; i < d->k; i++) {
        d->b[i] = (mimo_real)a->bin_boundaries.v[i];
        if (i && !(d->b[i] > d->b[i - 1])) {
            snprintf(err, len, "discretization layer '%s': bin_boundaries must "
                     "increase (%.9g after %.9g, as %s)", n->name,
                     a->bin_boundaries.v[i], a->bin_boundaries.v[i - 1],
                     sizeof(mimo_real) == 4 ? "float32" : "float64");
            return -1;
        }
    }
    n->shape = MIMO_PARENT(g, n, 0)->shape;
    if (a->output_mode == 1) { /* one_hot: a last axis of 1 replaced */
        if (mimo_shape_last(&n->shape) != 1 && n->shape.rank == MIMO_SAMPLE_RANK) {
            snprintf(err, len, "discretization layer '%s': one_hot on a %d-axis "
                     "input would make %d axes (at most %d)", n->name,
                     n->shape.rank, n->shape.rank + 1, MIMO_SAMPLE_RANK);
            return -1;
        }
        if (mimo_shape_last(&n->shape) != 1)
            n->shape.rank++;
        n->shape.dim[n->shape.rank - 1] = d->k + 1;
    }
    return 0;
}

static void discretization_buffers(mimo_graph *g, mimo_node *n, mimo_arena *a)
{
    n->y = mimo_arena_take(a, (size_t)g->max_batch * (size_t)n->width);
}

/* The count of boundaries <= x: the first b above x (a NaN: K). */
static int bucket(const discretization_node *d, mimo_real x)
{
    int lo = 0, hi = d->k;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (x < d->b[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static void discretization_forward(mimo_graph *g, mimo_node *n,
                                   const mimo_real *params, int b)
{
    (void)params;
    const discretization_args *a = n->args;
    const discretization_node *d = n->priv;
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    size_t m = (size_t)b * (size_t)p->width;
    if (a->output_mode == 0) {
        for (size_t i = 0; i < m; i++)
            n->y[i] = (mimo_real)bucket(d, p->y[i]);
        return;
    }
    size_t w = (size_t)d->k + 1;
    memset(n->y, 0, sizeof *n->y * m * w);
    for (size_t i = 0; i < m; i++)
        n->y[i * w + (size_t)bucket(d, p->y[i])] = 1;
}

/* piecewise constant: nothing flows back */
static void discretization_backward(mimo_graph *g, mimo_node *n,
                                    const mimo_real *params, mimo_real *grads, int b)
{
    (void)g, (void)n, (void)params, (void)grads, (void)b;
}

static void discretization_describe(const mimo_node *n, char *buf, size_t len)
{
    const discretization_args *a = n->args;
    snprintf(buf, len, "discretization(%d bins%s)", a->bin_boundaries.n + 1,
             a->output_mode ? ", one_hot" : "");
}

/* ids = ReduceSum(Cast(x[..., None] >= b)) over the last axis; one_hot:
 * ids[..., None] == [0, 1, ..., K], reshaped to the node's shape. */
static const char *discretization_onnx(mimo_onnx *x, const mimo_graph *g,
                                       const mimo_node *n, const char *const *in,
                                       char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    const discretization_args *a = n->args;
    const discretization_node *d = n->priv;
    long long kd = d->k, last = -1;
    const mimo_onnx_attr to = {.name = "to", .type = MIMO_ONNX_INT, .i = 1}; /* float */
    const mimo_onnx_attr keep = {.name = "keepdims", .type = MIMO_ONNX_INT, .i = 0};
    const char *axis = x->constant_i64(x, "last_axis", &last, 1);
    const char *xb = x->op(x, "Unsqueeze", (const char *const[]){in[0], axis}, 2, NULL, 0);
    const char *ge = mimo_onnx_op2(x, "GreaterOrEqual", xb,
                                   x->constant(x, "bin_boundaries", d->b, &kd, 1));
    const char *ids = x->op(x, "ReduceSum",
                            (const char *const[]){x->op(x, "Cast", &ge, 1, &to, 1),
                                                  axis}, 2, &keep, 1);
    if (!ids || a->output_mode == 0)
        return ids;
    mimo_real r[MIMO_MAX_REALS + 1];
    long long rd = d->k + 1;
    for (int i = 0; i <= d->k; i++)
        r[i] = (mimo_real)i;
    const char *eq = mimo_onnx_op2(x, "Equal",
                                   x->op(x, "Unsqueeze", (const char *const[]){ids, axis},
                                         2, NULL, 0),
                                   x->constant(x, "buckets", r, &rd, 1));
    return mimo_onnx_reshape(x, x->op(x, "Cast", &eq, 1, &to, 1), &n->shape);
}

const mimo_kind mimo_kind_discretization = {
    .name = "discretization",
    .args = discretization_keys,
    .n_args = (int)(sizeof discretization_keys / sizeof *discretization_keys),
    .args_size = sizeof(discretization_args),
    .node_size = sizeof(discretization_node),
    .dot_shape = "box",
    .infer = discretization_infer,
    .buffers = discretization_buffers,
    .forward = discretization_forward,
    .backward = discretization_backward,
    .describe = discretization_describe,
    .onnx = discretization_onnx,
};
