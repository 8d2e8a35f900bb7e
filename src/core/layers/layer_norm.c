/* layer_norm.c — layer normalization over the last axis (Keras'
 * LayerNormalization): per position, xhat = (x - mean) / sqrt(var + eps)
 * with the position's own mean and (biased) variance, y = gamma xhat + beta.
 * dx = inv (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = dy gamma.
 * Tensors: gamma (d) ones, beta (d) zeros (scale, center). */
#include <stdio.h>
#include <stdlib.h>
#include <tgmath.h>

#include "core/kind.h"
#include "core/onnx.h"
#include "core/par.h"

typedef struct {
    double epsilon;
    int center, scale;
} layer_norm_args;

static const mimo_arg layer_norm_keys[] = {
    {MIMO_ARG(layer_norm_args, epsilon), .type = MIMO_ARG_REAL, .lo = 0,
     .hi = HUGE_VAL, .excl = 1, .expect = "a number > 0"},
    {MIMO_ARG(layer_norm_args, center), .type = MIMO_ARG_BOOL},
    {MIMO_ARG(layer_norm_args, scale), .type = MIMO_ARG_BOOL},
};

static void layer_norm_defaults(void *p)
{
    layer_norm_args *a = p;
    a->epsilon = 1e-3, a->center = 1, a->scale = 1;
}

typedef struct {
    int gamma, beta;      /* tensor indices, -1 when absent */
    mimo_real *xhat, *inv; /* (B, width), (B, positions) of the last forward */
} layer_norm_node;

static int layer_norm_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const layer_norm_args *a = n->args;
    layer_norm_node *d = n->priv;
    if (mimo_check_inputs(n, 1, 1, "", err, len))
        return -1;
    n->shape = MIMO_PARENT(g, n, 0)->shape;
    mimo_shape s = {1, {mimo_shape_last(&n->shape)}};
    d->gamma = a->scale ? mimo_node_add_tensor(n, "gamma", &s,
                                               (mimo_init){MIMO_INIT_CONSTANT, 1, 0}, 1, 1)
                        : -1;
    d->beta = a->center ? mimo_node_add_tensor(n, "beta", &s,
                                               (mimo_init){MIMO_INIT_ZEROS, 0, 0}, 1, 1)
                        : -1;
    return (a->scale && d->gamma < 0) || (a->center && d->beta < 0) ? -1 : 0;
}

static void layer_norm_buffers(mimo_graph *g, mimo_node *n, mimo_arena *a)
{
    layer_norm_node *d = n->priv;
    size_t B = (size_t)g->max_batch;
    n->y = mimo_arena_take(a, B * (size_t)n->width);
    d->xhat = mimo_arena_take(a, B * (size_t)n->width);
    d->inv = mimo_arena_take(a, B * (size_t)mimo_shape_rows(&n->shape));
}

static void layer_norm_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                               int b)
{
    const layer_norm_args *a = n->args;
    const layer_norm_node *d = n->priv;
    const mimo_real *x = MIMO_PARENT(g, n, 0)->y;
    const mimo_real *gamma = d->gamma >= 0 ? params + n->tensors[d->gamma].off : NULL;
    const mimo_real *beta = d->beta >= 0 ? params + n->tensors[d->beta].off : NULL;
    int w = mimo_shape_last(&n->shape), R = b * mimo_shape_rows(&n->shape);
    MIMO_PAR_FOR((size_t)R * w >= MIMO_PAR_MIN, int r = 0, r < R, r++, {
        const mimo_real *xr = x + (size_t)r * w;
        mimo_real *h = d->xhat + (size_t)r * w, *y = n->y + (size_t)r * w;
        double mean = 0, var = 0;
        for (int j = 0; j < w; j++)
            mean += xr[j];
        mean /= w;
        for (int j = 0; j < w; j++)
            var += (xr[j] - mean) * (xr[j] - mean);
        mimo_real inv = (mimo_real)(1 / sqrt(var / w + a->epsilon));
        d->inv[r] = inv;
        for (int j = 0; j < w; j++) {
            h[j] = (mimo_real)(xr[j] - mean) * inv;
            y[j] = (gamma ? gamma[j] : 1) * h[j] + (beta ? beta[j] : 0);
        }
    });
}

static void layer_norm_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                                mimo_real *grads, int b)
{
    const layer_norm_node *d = n->priv;
    mimo_node *p = MIMO_PARENT(g, n, 0);
    const mimo_real *gamma = d->gamma >= 0 ? params + n->tensors[d->gamma].off : NULL;
    int w = mimo_shape_last(&n->shape), R = b * mimo_shape_rows(&n->shape);
    MIMO_PAR_FOR((size_t)R * w >= MIMO_PAR_MIN, int r = 0, r < (p->dy ? R : 0), r++, {
        const mimo_real *dy = n->dy + (size_t)r * w, *h = d->xhat + (size_t)r * w;
        mimo_real *dx = p->dy + (size_t)r * w;
        double s1 = 0, s2 = 0;
        for (int j = 0; j < w; j++) {
            double dh = dy[j] * (gamma ? gamma[j] : 1);
            s1 += dh, s2 += dh * h[j];
        }
        s1 /= w, s2 /= w;
        for (int j = 0; j < w; j++)
            dx[j] += d->inv[r] *
                     (mimo_real)(dy[j] * (gamma ? gamma[j] : 1) - s1 - h[j] * s2);
    });
    /* then the parameters' */
    for (int r = 0; r < R; r++) {
        const mimo_real *dy = n->dy + (size_t)r * w, *h = d->xhat + (size_t)r * w;
        if (d->gamma >= 0 && n->tensors[d->gamma].trained)
            for (int j = 0; j < w; j++)
                grads[n->tensors[d->gamma].off + (size_t)j] += dy[j] * h[j];
        if (d->beta >= 0 && n->tensors[d->beta].trained)
            for (int j = 0; j < w; j++)
                grads[n->tensors[d->beta].off + (size_t)j] += dy[j];
    }
}

/* masks: the output keeps the input's time axis (ARCHITECTURE.md, Masks) */
static int layer_norm_masking(const mimo_graph *g, const mimo_node *n)
{
    (void)g, (void)n;
    return MIMO_MASK_PASS;
}

static const char *const layer_norm_aliases[] = {"layer_normalization", NULL};

/* ONNX's LayerNormalization over the last axis (opset 17; its scale is
 * required: ones without gamma). */
static const char *layer_norm_onnx(mimo_onnx *x, const mimo_graph *g,
                                   const mimo_node *n, const char *const *in,
                                   char *err, size_t len)
{
    (void)g;
    const layer_norm_args *a = n->args;
    const layer_norm_node *d = n->priv;
    int w = mimo_shape_last(&n->shape);
    if (x->opset < 17) {
        snprintf(err, len, "layer_norm needs opset 17 (LayerNormalization); "
                 "the file's is %d", x->opset);
        return NULL;
    }
    const char *v[3] = {in[0], NULL, ""};
    if (d->gamma >= 0) {
        v[1] = mimo_onnx_tensor(x, n, d->gamma);
    } else {
        mimo_real *ones = malloc(sizeof *ones * (size_t)w);
        if (!ones) {
            snprintf(err, len, "out of memory");
            return NULL;
        }
        for (int j = 0; j < w; j++)
            ones[j] = 1;
        long long dims = w;
        v[1] = x->constant(x, "gamma", ones, &dims, 1);
        free(ones);
    }
    if (d->beta >= 0)
        v[2] = mimo_onnx_tensor(x, n, d->beta);
    const mimo_onnx_attr at[2] = {
        {.name = "axis", .type = MIMO_ONNX_INT, .i = -1},
        {.name = "epsilon", .type = MIMO_ONNX_FLOAT, .f = a->epsilon}};
    return v[1] && v[2] ? x->op(x, "LayerNormalization", v, d->beta >= 0 ? 3 : 2, at, 2)
                        : NULL;
}

const mimo_kind mimo_kind_layer_norm = {
    .name = "layer_norm",
    .aliases = layer_norm_aliases,
    .args = layer_norm_keys,
    .n_args = (int)(sizeof layer_norm_keys / sizeof *layer_norm_keys),
    .args_size = sizeof(layer_norm_args),
    .defaults = layer_norm_defaults,
    .node_size = sizeof(layer_norm_node),
    .dot_shape = "box",
    .infer = layer_norm_infer,
    .masking = layer_norm_masking,
    .buffers = layer_norm_buffers,
    .forward = layer_norm_forward,
    .backward = layer_norm_backward,
    .onnx = layer_norm_onnx,
};
