/* dropout.c — inverted dropout: in training y = x m / (1 - rate) with
 * m ~ Bernoulli(1 - rate) per element, dx = dy m / (1 - rate); in
 * inference y = x. The mask of a sample depends only on (seed, epoch, the
 * sample's global row, the layer's name) — never on the rank that holds
 * the sample — so 1 rank and N ranks draw the same masks (the draws are
 * here, declared in drop.h: attention's dropout draws the same way). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/kind.h"
#include "core/par.h"
#include "core/onnx.h"
#include "core/layers/drop.h"

typedef struct {
    double rate;
} dropout_args;

static const mimo_arg dropout_keys[] = {
    {MIMO_ARG(dropout_args, rate), .type = MIMO_ARG_REAL, .required = 1,
     .lo = 0, .hi = 1, .excl = 2, .expect = "a number in [0, 1)"},
};

typedef struct {
    uint64_t layer;    /* a hash of the layer's name */
} dropout_node;

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t mimo_drop_layer_key(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (const char *c = name; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001b3ULL;
    return h;
}

/* element j keeps when its uniform u_j >= rate, two 32-bit uniforms per
 * draw of a counter-based generator keyed by (seed, epoch, layer, row) */
void mimo_drop_mask(const mimo_graph *g, uint64_t layer, uint64_t row, double rate,
                    mimo_real *m, int w)
{
    uint64_t k = splitmix64(g->spec->train.seed ^
                            splitmix64((uint64_t)g->epoch + 1));
    k = splitmix64(k ^ layer);
    k = splitmix64(k ^ row);
    mimo_real keep = (mimo_real)(1 / (1 - rate));
    uint64_t cut = (uint64_t)(rate * 4294967296.0); /* u < rate: drop */
    for (int j = 0; j < w; j += 2) {
        uint64_t z = splitmix64(k + (uint64_t)(j / 2) * 0xd1342543de82ef95ULL);
        m[j] = (z >> 32) >= cut ? keep : 0;
        if (j + 1 < w)
            m[j + 1] = (z & 0xffffffffu) >= cut ? keep : 0;
    }
}

static int dropout_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    dropout_node *d = n->priv;
    if (mimo_check_inputs(n, 1, 1, "", err, len))
        return -1;
    n->shape = MIMO_PARENT(g, n, 0)->shape;
    d->layer = mimo_drop_layer_key(n->name);
    return 0;
}

/* y, and the scaled mask (0 or 1 / (1 - rate)) of the last training
 * forward in dz */
static void dropout_buffers(mimo_graph *g, mimo_node *n, mimo_arena *a)
{
    size_t len = (size_t)g->max_batch * (size_t)n->width;
    n->y = mimo_arena_take(a, len);
    n->dz = mimo_arena_take(a, len);
}

static void dropout_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                            int b)
{
    (void)params;
    const dropout_args *a = n->args;
    const dropout_node *d = n->priv;
    const mimo_real *x = MIMO_PARENT(g, n, 0)->y;
    size_t w = (size_t)n->width;
    if (!g->training || a->rate == 0) {
        memcpy(n->y, x, sizeof(mimo_real) * w * (size_t)b);
        return;
    }
    MIMO_PAR_FOR((size_t)b * w >= MIMO_PAR_MIN, int r = 0, r < b, r++, {
        mimo_real *m = n->dz + (size_t)r * w, *y = n->y + (size_t)r * w;
        const mimo_real *xr = x + (size_t)r * w;
        mimo_drop_mask(g, d->layer, g->rows[r], a->rate, m, (int)w);
        for (size_t j = 0; j < w; j++)
            y[j] = xr[j] * m[j];
    });
}

/* dx += dy m (training; inference never goes backward) */
static void dropout_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                             mimo_real *grads, int b)
{
    (void)params, (void)grads;
    const dropout_args *a = n->args;
    mimo_node *p = MIMO_PARENT(g, n, 0);
    size_t len = (size_t)b * (size_t)n->width;
    if (!p->dy)
        return;
    if (!g->training || a->rate == 0)
        for (size_t i = 0; i < len; i++)
            p->dy[i] += n->dy[i];
    else
        for (size_t i = 0; i < len; i++)
            p->dy[i] += n->dy[i] * n->dz[i];
}

static void dropout_describe(const mimo_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "dropout(%g)", ((const dropout_args *)n->args)->rate);
}

/* Inference: the identity. */
static const char *dropout_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                                const char *const *in, char *err, size_t len)
{
    (void)g, (void)n, (void)err, (void)len;
    return mimo_onnx_op1(x, "Identity", in[0]);
}

/* masks: the output keeps the input's time axis (ARCHITECTURE.md, Masks) */
static int dropout_masking(const mimo_graph *g, const mimo_node *n)
{
    (void)g, (void)n;
    return MIMO_MASK_PASS;
}

const mimo_kind mimo_kind_dropout = {
    .name = "dropout",
    .args = dropout_keys,
    .n_args = 1,
    .args_size = sizeof(dropout_args),
    .node_size = sizeof(dropout_node),
    .dot_shape = "box",
    .infer = dropout_infer,
    .masking = dropout_masking,
    .buffers = dropout_buffers,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .describe = dropout_describe,
    .onnx = dropout_onnx,
};
