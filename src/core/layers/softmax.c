/* softmax.c — softmax over one axis of a sample (Keras' Softmax(axis)):
 * axis counts the batch as 0, as Keras does (-1, the default, is the
 * last; 1 the first of a sample); the batch axis is refused.
 *   y = exp(x - max) / sum exp(x - max) along the axis;
 *   dx = y (dy - sum_axis y dy)
 * log_mean: each output value's mean over an epoch's training rows goes
 * to history.csv (a mixture's gate: its mean weight per expert). */
#include <stdio.h>
#include <tgmath.h>

#include "core/kind.h"
#include "core/onnx.h"

typedef struct {
    int axis;
    int log_mean;
} softmax_args;

static const mimo_arg softmax_keys[] = {
    {MIMO_ARG(softmax_args, axis), .type = MIMO_ARG_INT, .lo = -MIMO_SAMPLE_RANK,
     .hi = MIMO_SAMPLE_RANK, .expect = "an axis in [-3, 3], not 0 (the batch)"},
    {MIMO_ARG(softmax_args, log_mean), .type = MIMO_ARG_BOOL},
};

static void softmax_defaults(void *p) { ((softmax_args *)p)->axis = -1; }

/* The axis as an index into the sample's dims, or -1. */
static int sample_axis(const mimo_node *n, const mimo_shape *s)
{
    int a = ((const softmax_args *)n->args)->axis;
    a = a < 0 ? s->rank + a : a - 1;
    return a >= 0 && a < s->rank ? a : -1;
}

static int softmax_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    if (mimo_check_inputs(n, 1, 1, "", err, len))
        return -1;
    n->shape = MIMO_PARENT(g, n, 0)->shape;
    if (sample_axis(n, &n->shape) < 0) {
        snprintf(err, len, "softmax layer '%s': axis %d is not an axis of a "
                 "sample of %d axes (1..%d, or -%d..-1; 0 is the batch)", n->name,
                 ((const softmax_args *)n->args)->axis, n->shape.rank,
                 n->shape.rank, n->shape.rank);
        return -1;
    }
    int w = 1;
    for (int k = 0; k < n->shape.rank; k++)
        w *= n->shape.dim[k];
    if (((const softmax_args *)n->args)->log_mean && w > MIMO_LOG_MEAN_MAX) {
        snprintf(err, len, "softmax layer '%s': log_mean logs one column per "
                 "value, and its %d values are more than %d", n->name, w,
                 MIMO_LOG_MEAN_MAX);
        return -1;
    }
    return 0;
}

static int softmax_log_mean(const mimo_node *n)
{
    return ((const softmax_args *)n->args)->log_mean;
}

/* outer x len x inner: the softmax runs over len values inner apart */
static void geometry(const mimo_node *n, size_t *outer, size_t *len, size_t *inner)
{
    int a = sample_axis(n, &n->shape);
    *outer = 1, *inner = 1, *len = (size_t)n->shape.dim[a];
    for (int k = 0; k < a; k++)
        *outer *= (size_t)n->shape.dim[k];
    for (int k = a + 1; k < n->shape.rank; k++)
        *inner *= (size_t)n->shape.dim[k];
}

static void softmax_forward(mimo_graph *g, mimo_node *n, const mimo_real *params, int b)
{
    (void)params;
    const mimo_real *x = MIMO_PARENT(g, n, 0)->y;
    size_t outer, len, inner;
    geometry(n, &outer, &len, &inner);
    for (size_t o = 0; o < (size_t)b * outer; o++)
        for (size_t in = 0; in < inner; in++) {
            const mimo_real *xs = x + o * len * inner + in;
            mimo_real *ys = n->y + o * len * inner + in, mx = xs[0], s = 0;
            for (size_t i = 1; i < len; i++)
                mx = xs[i * inner] > mx ? xs[i * inner] : mx;
            for (size_t i = 0; i < len; i++)
                s += ys[i * inner] = exp(xs[i * inner] - mx);
            for (size_t i = 0; i < len; i++)
                ys[i * inner] /= s;
        }
}

static void softmax_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                             mimo_real *grads, int b)
{
    (void)params, (void)grads;
    mimo_real *dx = MIMO_PARENT(g, n, 0)->dy;
    size_t outer, len, inner;
    if (!dx)
        return;
    geometry(n, &outer, &len, &inner);
    for (size_t o = 0; o < (size_t)b * outer; o++)
        for (size_t in = 0; in < inner; in++) {
            size_t base = o * len * inner + in;
            mimo_real s = 0;
            for (size_t i = 0; i < len; i++)
                s += n->y[base + i * inner] * n->dy[base + i * inner];
            for (size_t i = 0; i < len; i++)
                dx[base + i * inner] += n->y[base + i * inner] *
                                        (n->dy[base + i * inner] - s);
        }
}

static void softmax_describe(const mimo_node *n, char *buf, size_t len)
{
    const softmax_args *a = n->args;
    snprintf(buf, len, "softmax(axis %d%s)", a->axis, a->log_mean ? ", log_mean" : "");
}

/* Softmax along the axis (Keras' numbering, the batch 0, is ONNX's). */
static const char *softmax_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                                const char *const *in, char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    const mimo_onnx_attr axis = {.name = "axis", .type = MIMO_ONNX_INT,
                                 .i = ((const softmax_args *)n->args)->axis};
    return x->op(x, "Softmax", in, 1, &axis, 1);
}

const mimo_kind mimo_kind_softmax = {
    .name = "softmax",
    .args = softmax_keys,
    .n_args = (int)(sizeof softmax_keys / sizeof *softmax_keys),
    .args_size = sizeof(softmax_args),
    .defaults = softmax_defaults,
    .dot_shape = "hexagon",
    .flags = MIMO_KIND_PROBABILITIES,
    .infer = softmax_infer,
    .forward = softmax_forward,
    .backward = softmax_backward,
    .describe = softmax_describe,
    .onnx = softmax_onnx,
    .log_mean = softmax_log_mean,
};
