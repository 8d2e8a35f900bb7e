/* batch_norm.c — batch normalization (Keras' BatchNormalization): per
 * channel (the last axis), over the batch and every other axis.
 * Training: mean and biased variance of the GLOBAL batch — the sums are
 * reduced over the ranks (mimo_graph_reduce), so 1 rank and N ranks
 * normalize alike — xhat = (x - mean) / sqrt(var + eps), y = gamma xhat +
 * beta, and moving = momentum moving + (1 - momentum) batch statistic.
 * Backward, with the global means of dy and dy xhat (reduced again):
 * dx = gamma inv (dy - mean(dy) - xhat mean(dy xhat)).
 * Inference, and a layer with trainable: false (as Keras): the moving
 * statistics, y affine in x, dx = gamma inv dy.
 * Tensors: gamma (c) ones, beta (c) zeros (scale, center), and the
 * untrained state moving_mean (c) zeros, moving_variance (c) ones. */
#include <stdio.h>
#include <string.h>
#include <tgmath.h>

#include "core/kind.h"
#include "core/onnx.h"
#include "core/par.h"

typedef struct {
    double momentum, epsilon;
    int center, scale;
} batch_norm_args;

static const mimo_arg batch_norm_keys[] = {
    {MIMO_ARG(batch_norm_args, momentum), .type = MIMO_ARG_REAL, .lo = 0, .hi = 1,
     .expect = "a number in [0, 1]"},
    {MIMO_ARG(batch_norm_args, epsilon), .type = MIMO_ARG_REAL, .lo = 0,
     .hi = HUGE_VAL, .excl = 1, .expect = "a number > 0"},
    {MIMO_ARG(batch_norm_args, center), .type = MIMO_ARG_BOOL},
    {MIMO_ARG(batch_norm_args, scale), .type = MIMO_ARG_BOOL},
};

static void batch_norm_defaults(void *p)
{
    batch_norm_args *a = p;
    a->momentum = 0.99, a->epsilon = 1e-3, a->center = 1, a->scale = 1;
}

typedef struct {
    int gamma, beta, mean, var;  /* tensor indices (gamma, beta: -1 if absent) */
    int batch_stats;             /* the last forward used the batch's */
    double count;                /* positions over all ranks of that batch */
    mimo_real *xhat, *inv;       /* (B, width), (c) */
    double *sums;                /* (4 c + 1) for the reductions */
} batch_norm_node;

static int batch_norm_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const batch_norm_args *a = n->args;
    batch_norm_node *d = n->priv;
    if (mimo_check_inputs(n, 1, 1, "", err, len))
        return -1;
    n->shape = MIMO_PARENT(g, n, 0)->shape;
    mimo_shape s = {1, {mimo_shape_last(&n->shape)}};
    mimo_init ones = {MIMO_INIT_CONSTANT, 1, 0}, zeros = {MIMO_INIT_ZEROS, 0, 0};
    d->gamma = a->scale ? mimo_node_add_tensor(n, "gamma", &s, ones, 1, 1) : -1;
    d->beta = a->center ? mimo_node_add_tensor(n, "beta", &s, zeros, 1, 1) : -1;
    d->mean = mimo_node_add_state(n, "moving_mean", &s, zeros);
    d->var = mimo_node_add_state(n, "moving_variance", &s, ones);
    return (a->scale && d->gamma < 0) || (a->center && d->beta < 0) ||
           d->mean < 0 || d->var < 0 ? -1 : 0;
}

static void batch_norm_buffers(mimo_graph *g, mimo_node *n, mimo_arena *a)
{
    batch_norm_node *d = n->priv;
    int c = mimo_shape_last(&n->shape);
    n->y = mimo_arena_take(a, (size_t)g->max_batch * (size_t)n->width);
    d->xhat = mimo_arena_take(a, (size_t)g->max_batch * (size_t)n->width);
    d->inv = mimo_arena_take(a, (size_t)c);
    d->sums = mimo_arena_take_doubles(a, 4 * (size_t)c + 1);
}

/* Whether this forward normalizes with the batch's statistics. */
static int uses_batch(const mimo_graph *g, const mimo_node *n)
{
    return g->training && g->spec->layers[n->spec_index].trainable;
}

/* Training: the global batch's mean and variance per channel into
 * sums[1..c] and the moving statistics updated; returns them. */
static void batch_stats(mimo_graph *g, mimo_node *n, const mimo_real *x, int R,
                        mimo_real *params, double *mean, double *var)
{
    const batch_norm_args *a = n->args;
    batch_norm_node *d = n->priv;
    int c = mimo_shape_last(&n->shape);
    double *s = d->sums;
    memset(s, 0, sizeof *s * (size_t)(c + 1));
    s[0] = R;
    for (int r = 0; r < R; r++)
        for (int j = 0; j < c; j++)
            s[1 + j] += x[(size_t)r * c + j];
    mimo_graph_reduce(g, s, c + 1);
    d->count = s[0];
    for (int j = 0; j < c; j++)
        mean[j] = d->count > 0 ? s[1 + j] / d->count : 0, var[j] = 0;
    for (int r = 0; r < R; r++) /* two passes: no cancellation */
        for (int j = 0; j < c; j++) {
            double e = x[(size_t)r * c + j] - mean[j];
            var[j] += e * e;
        }
    mimo_graph_reduce(g, var, c);
    for (int j = 0; j < c; j++)
        var[j] = d->count > 0 ? var[j] / d->count : 0;
    if (!g->writes_state)
        return;
    mimo_real *mm = params + n->tensors[d->mean].off, *mv = params + n->tensors[d->var].off;
    for (int j = 0; j < c; j++) {
        mm[j] = (mimo_real)(a->momentum * mm[j] + (1 - a->momentum) * mean[j]);
        mv[j] = (mimo_real)(a->momentum * mv[j] + (1 - a->momentum) * var[j]);
    }
}

/* The moving statistics update writes the layer's state tensors, which
 * live in the (writable) parameter buffer. */
static void batch_norm_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                               int b)
{
    const batch_norm_args *a = n->args;
    batch_norm_node *d = n->priv;
    const mimo_real *x = MIMO_PARENT(g, n, 0)->y;
    int c = mimo_shape_last(&n->shape), R = b * mimo_shape_rows(&n->shape);
    double *mean = d->sums + 1, *var = d->sums + 1 + c;
    d->batch_stats = uses_batch(g, n);
    if (d->batch_stats)
        batch_stats(g, n, x, R, (mimo_real *)params, mean, var);
    else
        for (int j = 0; j < c; j++) {
            mean[j] = params[n->tensors[d->mean].off + (size_t)j];
            var[j] = params[n->tensors[d->var].off + (size_t)j];
        }
    const mimo_real *gamma = d->gamma >= 0 ? params + n->tensors[d->gamma].off : NULL;
    const mimo_real *beta = d->beta >= 0 ? params + n->tensors[d->beta].off : NULL;
    for (int j = 0; j < c; j++)
        d->inv[j] = (mimo_real)(1 / sqrt(var[j] + a->epsilon));
    MIMO_PAR_FOR((size_t)R * c >= MIMO_PAR_MIN, int r = 0, r < R, r++, {
        for (int j = 0; j < c; j++) {
            size_t i = (size_t)r * c + j;
            d->xhat[i] = (mimo_real)(x[i] - mean[j]) * d->inv[j];
            n->y[i] = (gamma ? gamma[j] : 1) * d->xhat[i] + (beta ? beta[j] : 0);
        }
    });
}

/* dx first (it reads gamma, which plain SGD in place changes next), from
 * the global means; then the parameters' gradients, from this rank's sums
 * (the gradient sum adds the ranks' up). */
static void batch_norm_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                                mimo_real *grads, int b)
{
    batch_norm_node *d = n->priv;
    mimo_node *p = MIMO_PARENT(g, n, 0);
    int c = mimo_shape_last(&n->shape), R = b * mimo_shape_rows(&n->shape);
    const mimo_real *gamma = d->gamma >= 0 ? params + n->tensors[d->gamma].off : NULL;
    double *sdy = d->sums, *sdyx = d->sums + c;           /* this rank's */
    double *mdy = d->sums + 2 * c, *mdyx = d->sums + 3 * c; /* global means */
    memset(d->sums, 0, sizeof *d->sums * 2 * (size_t)c);
    for (int r = 0; r < R; r++)
        for (int j = 0; j < c; j++) {
            size_t i = (size_t)r * c + j;
            sdy[j] += n->dy[i], sdyx[j] += n->dy[i] * d->xhat[i];
        }
    if (p->dy && d->batch_stats) {
        memcpy(mdy, sdy, sizeof *mdy * 2 * (size_t)c);
        mimo_graph_reduce(g, mdy, 2 * c);
        for (int j = 0; j < 2 * c; j++)
            mdy[j] = d->count > 0 ? mdy[j] / d->count : 0;
    }
    MIMO_PAR_FOR((size_t)R * c >= MIMO_PAR_MIN, int r = 0, r < (p->dy ? R : 0), r++, {
        for (int j = 0; j < c; j++) {
            size_t i = (size_t)r * c + j;
            mimo_real k = (gamma ? gamma[j] : 1) * d->inv[j];
            p->dy[i] += d->batch_stats
                            ? k * (mimo_real)(n->dy[i] - mdy[j] - d->xhat[i] * mdyx[j])
                            : k * n->dy[i];
        }
    });
    for (int j = 0; d->gamma >= 0 && n->tensors[d->gamma].trained && j < c; j++)
        grads[n->tensors[d->gamma].off + (size_t)j] += (mimo_real)sdyx[j];
    for (int j = 0; d->beta >= 0 && n->tensors[d->beta].trained && j < c; j++)
        grads[n->tensors[d->beta].off + (size_t)j] += (mimo_real)sdy[j];
}

static void batch_norm_describe(const mimo_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "batch_norm");
    (void)n;
}

static const char *const batch_norm_aliases[] = {"batch_normalization", NULL};

/* Inference: (x - moving_mean) inv, inv = 1 / sqrt(moving_variance + eps)
 * rounded as forward rounds it, then gamma and beta; each a Mul or Add
 * broadcast over the last axis. */
static const char *batch_norm_onnx(mimo_onnx *x, const mimo_graph *g,
                                   const mimo_node *n, const char *const *in,
                                   char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    const batch_norm_args *a = n->args;
    const batch_norm_node *d = n->priv;
    const char *y = mimo_onnx_standardize(x, n, in[0], d->mean, d->var, a->epsilon);
    if (d->gamma >= 0)
        y = mimo_onnx_op2(x, "Mul", y, mimo_onnx_tensor(x, n, d->gamma));
    if (d->beta >= 0)
        y = mimo_onnx_op2(x, "Add", y, mimo_onnx_tensor(x, n, d->beta));
    return y;
}

const mimo_kind mimo_kind_batch_norm = {
    .name = "batch_norm",
    .aliases = batch_norm_aliases,
    .args = batch_norm_keys,
    .n_args = (int)(sizeof batch_norm_keys / sizeof *batch_norm_keys),
    .args_size = sizeof(batch_norm_args),
    .defaults = batch_norm_defaults,
    .node_size = sizeof(batch_norm_node),
    .dot_shape = "box",
    .flags = MIMO_KIND_COLLECTIVE,
    .infer = batch_norm_infer,
    .buffers = batch_norm_buffers,
    .forward = batch_norm_forward,
    .backward = batch_norm_backward,
    .describe = batch_norm_describe,
    .onnx = batch_norm_onnx,
};
