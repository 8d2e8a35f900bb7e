/* normalization.c — feature normalization with fixed statistics (Keras'
 * Normalization, axis -1): y = (x - mean) / sqrt(variance + epsilon) per
 * position of the last axis; dx = dy / sqrt(variance + epsilon). The
 * untrained state tensors mean (c) zeros and variance (c) ones are the
 * statistics: with adapt: from_data, `mimo train` sets them at a fresh
 * start from the training file's /preprocessing/<input>/mean and
 * variance (the training split's, written by `mimo import csv --schema`),
 * or computed over the training rows when the file has none (io/adapt.c),
 * so the layer must read a model input directly; then they
 * travel in every checkpoint, and predict and eval normalize alike.
 * Keras 3 divides by max(sqrt(variance), epsilon): the same unless a
 * variance is below about epsilon squared. */
#include <stdio.h>
#include <tgmath.h>

#include "core/kind.h"
#include "core/onnx.h"

typedef struct {
    double epsilon;
    int adapt;           /* index in adapt_choices */
} normalization_args;

static const char *const adapt_choices[] = {"none", "from_data", NULL};

static const mimo_arg normalization_keys[] = {
    {MIMO_ARG(normalization_args, epsilon), .type = MIMO_ARG_REAL, .lo = 0,
     .hi = HUGE_VAL, .excl = 1, .expect = "a number > 0"},
    {MIMO_ARG(normalization_args, adapt), .type = MIMO_ARG_CHOICE,
     .choices = adapt_choices},
};

static void normalization_defaults(void *p)
{
    normalization_args *a = p;
    a->epsilon = 1e-7; /* Keras' backend epsilon */
    a->adapt = 0;
}

typedef struct {
    int mean, var;       /* tensor indices */
    mimo_real *inv;      /* (c): 1 / sqrt(variance + epsilon) */
} normalization_node;

static int normalization_infer(mimo_graph *g, mimo_node *n, char *err,
                               size_t len)
{
    const normalization_args *a = n->args;
    normalization_node *d = n->priv;
    if (mimo_check_inputs(n, 1, 1, "", err, len))
        return -1;
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    if (a->adapt == 1 && p->kind) {
        snprintf(err, len, "normalization layer '%s' has adapt: from_data, so "
                 "it must read a model input (whose dataset's statistics it "
                 "takes), not layer '%s'", n->name, p->name);
        return -1;
    }
    n->shape = p->shape;
    mimo_shape s = {1, {mimo_shape_last(&n->shape)}};
    mimo_init ones = {MIMO_INIT_CONSTANT, 1, 0}, zeros = {MIMO_INIT_ZEROS, 0, 0};
    d->mean = mimo_node_add_state(n, "mean", &s, zeros);
    d->var = mimo_node_add_state(n, "variance", &s, ones);
    return d->mean < 0 || d->var < 0 ? -1 : 0;
}

static void normalization_buffers(mimo_graph *g, mimo_node *n, mimo_arena *a)
{
    normalization_node *d = n->priv;
    n->y = mimo_arena_take(a, (size_t)g->max_batch * (size_t)n->width);
    d->inv = mimo_arena_take(a, (size_t)mimo_shape_last(&n->shape));
}

/* y = (x - mean) inv, x (b, width) seen as (b width / c, c) */
static void normalization_forward(mimo_graph *g, mimo_node *n,
                                  const mimo_real *params, int b)
{
    const normalization_args *a = n->args;
    normalization_node *d = n->priv;
    const mimo_real *x = MIMO_PARENT(g, n, 0)->y;
    const mimo_real *mean = params + n->tensors[d->mean].off;
    const mimo_real *var = params + n->tensors[d->var].off;
    int c = mimo_shape_last(&n->shape);
    for (int j = 0; j < c; j++)
        d->inv[j] = (mimo_real)(1 / sqrt((double)var[j] + a->epsilon));
    size_t rows = (size_t)b * (size_t)(n->width / c);
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < c; j++)
            n->y[r * c + j] = (x[r * c + j] - mean[j]) * d->inv[j];
}

/* dx += dy inv; the statistics have no gradient */
static void normalization_backward(mimo_graph *g, mimo_node *n,
                                   const mimo_real *params, mimo_real *grads,
                                   int b)
{
    (void)params, (void)grads;
    normalization_node *d = n->priv;
    mimo_node *p = MIMO_PARENT(g, n, 0);
    if (!p->dy)
        return;
    int c = mimo_shape_last(&n->shape);
    size_t rows = (size_t)b * (size_t)(n->width / c);
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < c; j++)
            p->dy[r * c + j] += n->dy[r * c + j] * d->inv[j];
}

static int normalization_from_data(const mimo_node *n)
{
    return ((const normalization_args *)n->args)->adapt == 1 ? MIMO_ADAPT_MOMENTS : 0;
}

static void normalization_describe(const mimo_node *n, char *buf, size_t len)
{
    snprintf(buf, len, normalization_from_data(n) ? "normalization(from_data)"
                                                  : "normalization");
}

static const char *normalization_onnx(mimo_onnx *x, const mimo_graph *g,
                                      const mimo_node *n, const char *const *in,
                                      char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    const normalization_args *a = n->args;
    const normalization_node *d = n->priv;
    return mimo_onnx_standardize(x, n, in[0], d->mean, d->var, a->epsilon);
}

const mimo_kind mimo_kind_normalization = {
    .name = "normalization",
    .args = normalization_keys,
    .n_args = (int)(sizeof normalization_keys / sizeof *normalization_keys),
    .args_size = sizeof(normalization_args),
    .defaults = normalization_defaults,
    .node_size = sizeof(normalization_node),
    .dot_shape = "box",
    .infer = normalization_infer,
    .buffers = normalization_buffers,
    .forward = normalization_forward,
    .backward = normalization_backward,
    .describe = normalization_describe,
    .from_data = normalization_from_data,
    .onnx = normalization_onnx,
};
