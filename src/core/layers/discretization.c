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
 * embedding of the buckets. Piecewise constant: no gradient.
 *
 * num_bins K with adapt: from_data (Keras' Discretization(num_bins=K) and
 * adapt) instead of bin_boundaries: the K - 1 boundaries are the untrained
 * state tensor `bin_boundaries` (zeros until then), set when `mimo train`
 * starts afresh to the quantiles i/K of all the input's training values
 * (io/adapt.c: exact, numpy.quantile's 'linear' method, in double), so they
 * travel in the checkpoint and predict, eval, the ONNX export (an
 * initializer) and the PyTorch twin use them. Many equal training values
 * can make adapted boundaries equal: kept, as Keras keeps them (they only
 * need not decrease; the ids between equal ones never occur). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kind.h"
#include "core/onnx.h"

typedef struct {
    mimo_reals bin_boundaries;
    int output_mode;     /* index in mode_choices */
    int num_bins;        /* 0: bin_boundaries given */
    int adapt;           /* index in adapt_choices */
} discretization_args;

static const char *const mode_choices[] = {"int", "one_hot", NULL};
static const char *const adapt_choices[] = {"none", "from_data", NULL};

static const mimo_arg discretization_keys[] = {
    {MIMO_ARG(discretization_args, bin_boundaries), .type = MIMO_ARG_REALS,
     .lo = -HUGE_VAL, .hi = HUGE_VAL, .excl = 3,
     .expect = "a list of increasing finite numbers"},
    {MIMO_ARG(discretization_args, output_mode), .type = MIMO_ARG_CHOICE,
     .choices = mode_choices},
    {MIMO_ARG(discretization_args, num_bins), .type = MIMO_ARG_INT, .lo = 2,
     .hi = 1 << 16, .expect = "an integer from 2 to 65536"},
    {MIMO_ARG(discretization_args, adapt), .type = MIMO_ARG_CHOICE,
     .choices = adapt_choices},
};

typedef struct {
    mimo_real b[MIMO_MAX_REALS]; /* the given boundaries as compared */
    int k;               /* the count of boundaries */
    int state;           /* num_bins: the tensor `bin_boundaries`; else -1 */
} discretization_node;

/* bin_boundaries or num_bins with adapt: from_data, one of them; the
 * adapting layer reads a model input (whose values it takes). */
static int discretization_check(const mimo_graph *g, const mimo_node *n,
                                char *err, size_t len)
{
    const discretization_args *a = n->args;
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    const char *why = NULL;
    if (a->bin_boundaries.n && a->num_bins)
        why = "give bin_boundaries or num_bins, not both";
    else if (!a->bin_boundaries.n && !a->num_bins)
        why = "needs bin_boundaries (increasing numbers) or num_bins with "
              "adapt: from_data";
    else if (a->num_bins && a->adapt != 1)
        why = "num_bins needs adapt: from_data (its boundaries are the "
              "training values' quantiles)";
    else if (a->bin_boundaries.n && a->adapt == 1)
        why = "adapt: from_data takes num_bins (the boundaries it computes), "
              "not bin_boundaries";
    if (why) {
        snprintf(err, len, "discretization layer '%s': %s", n->name, why);
        return -1;
    }
    if (a->adapt == 1 && p->kind) {
        snprintf(err, len, "discretization layer '%s' has adapt: from_data, so "
                 "it must read a model input (whose values' quantiles it takes), "
                 "not layer '%s'", n->name, p->name);
        return -1;
    }
    return 0;
}

static int discretization_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const discretization_args *a = n->args;
    discretization_node *d = n->priv;
    if (mimo_check_inputs(n, 1, 1, "", err, len) || discretization_check(g, n, err, len))
        return -1;
    d->k = a->num_bins ? a->num_bins - 1 : a->bin_boundaries.n;
    d->state = -1;
    if (a->num_bins) {
        mimo_shape s = {1, {d->k}};
        mimo_init zeros = {MIMO_INIT_ZEROS, 0, 0};
        if ((d->state = mimo_node_add_state(n, "bin_boundaries", &s, zeros)) < 0)
            return -1;
    }
    for (int i = 0; !a->num_bins && i < d->k; i++) {
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

/* The boundaries as compared: the given ones, or the adapted tensor. */
static const mimo_real *boundaries(const mimo_node *n, const mimo_real *params)
{
    const discretization_node *d = n->priv;
    return d->state < 0 ? d->b : params + n->tensors[d->state].off;
}

/* The count of boundaries <= x (k non-decreasing b): the first b above x
 * (a NaN: k). */
static int bucket(const mimo_real *bd, int k, mimo_real x)
{
    int lo = 0, hi = k;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (x < bd[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static void discretization_forward(mimo_graph *g, mimo_node *n,
                                   const mimo_real *params, int b)
{
    const discretization_args *a = n->args;
    const discretization_node *d = n->priv;
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    const mimo_real *bd = boundaries(n, params);
    size_t m = (size_t)b * (size_t)p->width;
    if (a->output_mode == 0) {
        for (size_t i = 0; i < m; i++)
            n->y[i] = (mimo_real)bucket(bd, d->k, p->y[i]);
        return;
    }
    size_t w = (size_t)d->k + 1;
    memset(n->y, 0, sizeof *n->y * m * w);
    for (size_t i = 0; i < m; i++)
        n->y[i * w + (size_t)bucket(bd, d->k, p->y[i])] = 1;
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
    snprintf(buf, len, "discretization(%d bins%s%s)",
             a->num_bins ? a->num_bins : a->bin_boundaries.n + 1,
             a->num_bins ? ", from_data" : "", a->output_mode ? ", one_hot" : "");
}

static int discretization_from_data(const mimo_node *n)
{
    const discretization_args *a = n->args;
    return a->adapt == 1 ? MIMO_ADAPT_QUANTILES : 0;
}

/* ids = ReduceSum(Cast(x[..., None] >= b)) over the last axis; one_hot:
 * ids[..., None] == [0, 1, ..., K], reshaped to the node's shape. b: the
 * given boundaries as a constant, or the adapted state tensor as an
 * initializer (the checkpoint's values). */
static const char *discretization_onnx(mimo_onnx *x, const mimo_graph *g,
                                       const mimo_node *n, const char *const *in,
                                       char *err, size_t len)
{
    (void)g;
    const discretization_args *a = n->args;
    const discretization_node *d = n->priv;
    long long kd = d->k, last = -1;
    const mimo_onnx_attr to = {.name = "to", .type = MIMO_ONNX_INT, .i = 1}; /* float */
    const mimo_onnx_attr keep = {.name = "keepdims", .type = MIMO_ONNX_INT, .i = 0};
    const char *axis = x->constant_i64(x, "last_axis", &last, 1);
    const char *xb = x->op(x, "Unsqueeze", (const char *const[]){in[0], axis}, 2, NULL, 0);
    const char *bd = d->state < 0 ? x->constant(x, "bin_boundaries", d->b, &kd, 1)
                                  : mimo_onnx_tensor(x, n, d->state);
    const char *ge = mimo_onnx_op2(x, "GreaterOrEqual", xb, bd);
    const char *ids = x->op(x, "ReduceSum",
                            (const char *const[]){x->op(x, "Cast", &ge, 1, &to, 1),
                                                  axis}, 2, &keep, 1);
    if (!ids || a->output_mode == 0)
        return ids;
    long long rd = d->k + 1;
    mimo_real *r = malloc(sizeof *r * (size_t)rd); /* num_bins: up to 65536 */
    if (!r) {
        snprintf(err, len, "out of memory exporting layer '%s'", n->name);
        return NULL;
    }
    for (int i = 0; i <= d->k; i++)
        r[i] = (mimo_real)i;
    const char *buckets = x->constant(x, "buckets", r, &rd, 1);
    free(r);
    const char *eq = mimo_onnx_op2(x, "Equal",
                                   x->op(x, "Unsqueeze", (const char *const[]){ids, axis},
                                         2, NULL, 0),
                                   buckets);
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
    .from_data = discretization_from_data,
    .onnx = discretization_onnx,
};
