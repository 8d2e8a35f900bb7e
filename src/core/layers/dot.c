/* dot.c — Keras' Dot: the product of two inputs per sample, contracted
 * over one axis of each (axes count the batch as 0, as Keras does; one
 * int is the same axis of both, a negative one counts from each input's
 * end). The output's axes are x's free axes, then y's, in order:
 *   (d)·(d) -> (1);  (k, d)·(d), axes [2, 1] -> (k);
 *   (T, d)·(S, d), axes 2 -> (T, S)   (attention's scores).
 * Each input is viewed as (p, K, q): the axes before the contracted one,
 * the contracted one, those after; its free index f = p q' + q.
 *   y[fx, fy] = sum_k x[fx, k] y[fy, k]
 *   dx[fx, k] += sum_fy dy[fx, fy] y[fy, k]   (and dy's likewise)
 * normalize (cosine proximity): each input is first divided by its L2
 * norm along the contracted axis, u = x / sqrt(max(sum_k x^2, 1e-12)) (as
 * Keras 2's l2_normalize), whose gradient is dx = r (du - u sum_k u du),
 * r = 1 / norm (just r du where the clamp holds). */
#include <stdio.h>
#include <string.h>
#include <tgmath.h>

#include "core/kind.h"
#include "core/onnx.h"

#define DOT_EPS 1e-12

typedef struct {
    mimo_ints axes;
    int normalize;
} dot_args;

static const mimo_arg dot_keys[] = {
    {MIMO_ARG(dot_args, axes), .type = MIMO_ARG_INTS, .required = 1,
     .lo = -MIMO_MAX_RANK, .hi = MIMO_MAX_RANK,
     .expect = "an axis in [-4, 4], not 0 (the batch)"},
    {MIMO_ARG(dot_args, normalize), .type = MIMO_ARG_BOOL},
};

/* Keras: one axis for both inputs or a pair, never the batch's. */
static int dot_finish(void *p, char *err, size_t len)
{
    const dot_args *a = p;
    if (a->axes.n > 2) {
        snprintf(err, len, "axes: one axis or a pair [axis of x, axis of y], "
                 "got %d values", a->axes.n);
        return -1;
    }
    for (int i = 0; i < a->axes.n; i++)
        if (a->axes.v[i] == 0) {
            snprintf(err, len, "axes: axis 0 is the batch; the axes of a "
                     "sample are 1.. (or -1 for the last)");
            return -1;
        }
    return 0;
}

/* An input seen as (p, k, q) around its contracted axis. */
typedef struct {
    size_t p, k, q;
} dot_view;

typedef struct {
    dot_view v[2];
    mimo_real *u[2];  /* normalize: (B, width of input i), the unit inputs */
    mimo_real *r[2];  /* and (B, free of input i), their inverse norms */
    mimo_real *g[2];  /* one row of d u_i, before it goes through the norm */
} dot_node;

static size_t dot_free(const dot_view *v) { return v->p * v->q; }

/* The offset of element (free f, contracted k) in one sample. */
static size_t dot_off(const dot_view *v, size_t f, size_t k)
{
    return (f / v->q) * v->k * v->q + k * v->q + f % v->q;
}

/* Input i's contracted axis as an index into its sample's dims, or -1. */
static int dot_axis(const mimo_node *n, int i, int rank)
{
    const dot_args *a = n->args;
    int ax = a->axes.v[a->axes.n == 2 ? i : 0];
    ax = ax < 0 ? rank + 1 + ax : ax; /* Keras: modulo the full rank */
    return ax >= 1 && ax <= rank ? ax - 1 : -1;
}

static void dot_shape_text(const mimo_shape *s, char *buf, size_t len)
{
    int o = snprintf(buf, len, "(");
    for (int k = 0; k < s->rank && o > 0 && (size_t)o < len; k++)
        o += snprintf(buf + o, len - (size_t)o, k ? ", %d" : "%d", s->dim[k]);
    if (o > 0 && (size_t)o < len)
        snprintf(buf + o, len - (size_t)o, ")");
}

static int dot_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    if (n->n_in != 2) {
        snprintf(err, len, "dot layer '%s' takes two inputs [x, y], got %d",
                 n->name, n->n_in);
        return -1;
    }
    dot_node *d = n->priv;
    int ax[2];
    n->shape.rank = 0;
    for (int i = 0; i < 2; i++) {
        const mimo_node *p = MIMO_PARENT(g, n, i);
        ax[i] = dot_axis(n, i, p->shape.rank);
        if (ax[i] < 0) {
            const dot_args *a = n->args;
            snprintf(err, len, "dot layer '%s': axis %d is not an axis of '%s', "
                     "a sample of %d axes (1..%d, or -%d..-1; 0 is the batch)",
                     n->name, a->axes.v[a->axes.n == 2 ? i : 0], p->name,
                     p->shape.rank, p->shape.rank, p->shape.rank);
            return -1;
        }
        dot_view *v = &d->v[i];
        v->p = v->q = 1;
        v->k = (size_t)p->shape.dim[ax[i]];
        for (int k = 0; k < p->shape.rank; k++) {
            if (k < ax[i])
                v->p *= (size_t)p->shape.dim[k];
            if (k > ax[i])
                v->q *= (size_t)p->shape.dim[k];
            if (k != ax[i] && n->shape.rank < MIMO_MAX_RANK)
                n->shape.dim[n->shape.rank++] = p->shape.dim[k];
        }
    }
    const mimo_node *x = MIMO_PARENT(g, n, 0), *y = MIMO_PARENT(g, n, 1);
    if (d->v[0].k != d->v[1].k) {
        char sx[64], sy[64];
        dot_shape_text(&x->shape, sx, sizeof sx);
        dot_shape_text(&y->shape, sy, sizeof sy);
        snprintf(err, len, "dot layer '%s': the contracted axes differ: '%s' "
                 "%s has %zu values on axis %d but '%s' %s has %zu on axis %d",
                 n->name, x->name, sx, d->v[0].k, ax[0] + 1, y->name, sy,
                 d->v[1].k, ax[1] + 1);
        return -1;
    }
    if (n->shape.rank > MIMO_SAMPLE_RANK) {
        snprintf(err, len, "dot layer '%s': the product of '%s' and '%s' would "
                 "have %d axes per sample; at most %d", n->name, x->name,
                 y->name, x->shape.rank + y->shape.rank - 2, MIMO_SAMPLE_RANK);
        return -1;
    }
    if (n->shape.rank == 0) /* (d)·(d): one value, as Keras' (N, 1) */
        n->shape = (mimo_shape){1, {1}};
    return 0;
}

static void dot_buffers(mimo_graph *g, mimo_node *n, mimo_arena *a)
{
    dot_node *d = n->priv;
    size_t B = (size_t)g->max_batch;
    n->y = mimo_arena_take(a, B * (size_t)n->width);
    if (!((const dot_args *)n->args)->normalize)
        return;
    for (int i = 0; i < 2; i++) {
        size_t w = (size_t)MIMO_PARENT(g, n, i)->width;
        d->u[i] = mimo_arena_take(a, B * w);
        d->r[i] = mimo_arena_take(a, B * dot_free(&d->v[i]));
        d->g[i] = mimo_arena_take(a, w);
    }
}

/* u = x r along the contracted axis, r = 1 / sqrt(max(sum x^2, eps)) */
static void dot_normalize(const dot_view *v, const mimo_real *x, mimo_real *u,
                          mimo_real *r)
{
    for (size_t f = 0; f < dot_free(v); f++) {
        mimo_real s = 0;
        for (size_t k = 0; k < v->k; k++)
            s += x[dot_off(v, f, k)] * x[dot_off(v, f, k)];
        r[f] = 1 / sqrt(s > DOT_EPS ? s : (mimo_real)DOT_EPS);
        for (size_t k = 0; k < v->k; k++)
            u[dot_off(v, f, k)] = x[dot_off(v, f, k)] * r[f];
    }
}

static void dot_forward(mimo_graph *g, mimo_node *n, const mimo_real *params, int b)
{
    (void)params;
    const dot_node *d = n->priv;
    const dot_view *vx = &d->v[0], *vy = &d->v[1];
    size_t fx = dot_free(vx), fy = dot_free(vy);
    size_t wx = (size_t)MIMO_PARENT(g, n, 0)->width, wy = (size_t)MIMO_PARENT(g, n, 1)->width;
    int norm = ((const dot_args *)n->args)->normalize;
    for (size_t row = 0; row < (size_t)b; row++) {
        const mimo_real *x = MIMO_PARENT(g, n, 0)->y + row * wx;
        const mimo_real *y = MIMO_PARENT(g, n, 1)->y + row * wy;
        if (norm) {
            dot_normalize(vx, x, d->u[0] + row * wx, d->r[0] + row * fx);
            dot_normalize(vy, y, d->u[1] + row * wy, d->r[1] + row * fy);
            x = d->u[0] + row * wx, y = d->u[1] + row * wy;
        }
        mimo_real *out = n->y + row * (size_t)n->width;
        for (size_t i = 0; i < fx; i++)
            for (size_t j = 0; j < fy; j++) {
                mimo_real s = 0;
                for (size_t k = 0; k < vx->k; k++)
                    s += x[dot_off(vx, i, k)] * y[dot_off(vy, j, k)];
                out[i * fy + j] = s;
            }
    }
}

/* dx += r (g - u sum_k u g) per free index: g, the gradient of u, through
 * the norm (just r g where the norm was clamped). */
static void dot_unnormalize(const dot_view *v, const mimo_real *x, const mimo_real *u,
                            const mimo_real *r, const mimo_real *gu, mimo_real *dx)
{
    for (size_t f = 0; f < dot_free(v); f++) {
        mimo_real s = 0, ug = 0;
        for (size_t k = 0; k < v->k; k++) {
            s += x[dot_off(v, f, k)] * x[dot_off(v, f, k)];
            ug += u[dot_off(v, f, k)] * gu[dot_off(v, f, k)];
        }
        if (!(s > DOT_EPS))
            ug = 0;
        for (size_t k = 0; k < v->k; k++)
            dx[dot_off(v, f, k)] += r[f] * (gu[dot_off(v, f, k)] - u[dot_off(v, f, k)] * ug);
    }
}

static void dot_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                         mimo_real *grads, int b)
{
    (void)params, (void)grads;
    const dot_node *d = n->priv;
    mimo_node *px = MIMO_PARENT(g, n, 0), *py = MIMO_PARENT(g, n, 1);
    const dot_view *vx = &d->v[0], *vy = &d->v[1];
    size_t fx = dot_free(vx), fy = dot_free(vy);
    size_t wx = (size_t)px->width, wy = (size_t)py->width;
    int norm = ((const dot_args *)n->args)->normalize;
    for (size_t row = 0; row < (size_t)b; row++) {
        const mimo_real *x = norm ? d->u[0] + row * wx : px->y + row * wx;
        const mimo_real *y = norm ? d->u[1] + row * wy : py->y + row * wy;
        /* the gradients of the (unit) inputs: into dx, dy directly, or
         * into one row of g to go through the norm */
        mimo_real *gx = px->dy ? (norm ? d->g[0] : px->dy + row * wx) : NULL;
        mimo_real *gy = py->dy ? (norm ? d->g[1] : py->dy + row * wy) : NULL;
        if (norm && gx)
            memset(gx, 0, sizeof *gx * wx);
        if (norm && gy)
            memset(gy, 0, sizeof *gy * wy);
        const mimo_real *dout = n->dy + row * (size_t)n->width;
        for (size_t i = 0; i < fx; i++)
            for (size_t j = 0; j < fy; j++) {
                mimo_real t = dout[i * fy + j];
                for (size_t k = 0; k < vx->k; k++) {
                    if (gx)
                        gx[dot_off(vx, i, k)] += t * y[dot_off(vy, j, k)];
                    if (gy)
                        gy[dot_off(vy, j, k)] += t * x[dot_off(vx, i, k)];
                }
            }
        if (norm && gx)
            dot_unnormalize(vx, px->y + row * wx, x, d->r[0] + row * fx, gx,
                            px->dy + row * wx);
        if (norm && gy)
            dot_unnormalize(vy, py->y + row * wy, y, d->r[1] + row * fy, gy,
                            py->dy + row * wy);
    }
}

static void dot_describe(const mimo_node *n, char *buf, size_t len)
{
    const dot_args *a = n->args;
    if (a->axes.n == 2)
        snprintf(buf, len, "dot(axes %d, %d%s)", a->axes.v[0], a->axes.v[1],
                 a->normalize ? ", cosine" : "");
    else
        snprintf(buf, len, "dot(axes %d%s)", a->axes.v[0],
                 a->normalize ? ", cosine" : "");
}

static double dot_flops(const mimo_graph *g, const mimo_node *n)
{
    (void)g;
    const dot_node *d = n->priv;
    return 6.0 * (double)dot_free(&d->v[0]) * (double)dot_free(&d->v[1]) *
           (double)d->v[0].k;
}

static size_t dot_scratch(const mimo_graph *g, const mimo_node *n, size_t b)
{
    const dot_node *d = n->priv;
    if (!((const dot_args *)n->args)->normalize)
        return 0;
    size_t s = 0;
    for (int i = 0; i < 2; i++) {
        size_t w = (size_t)MIMO_PARENT(g, n, i)->width;
        s += b * w + b * dot_free(&d->v[i]) + w;
    }
    return s;
}

/* Input i (N, dims...) normalized along its contracted axis (ONNX axis
 * ax + 1), then transposed so the contracted axis is last (x) or first
 * after the batch (y), reshaped to (N, free, K) or (N, K, free). */
static const char *dot_onnx_side(mimo_onnx *x, const mimo_node *p, int ax,
                                 int norm, int last, const char *v)
{
    if (norm) {
        const long long axes = ax + 1;
        const mimo_onnx_attr at[2] = {
            {.name = "axes", .type = MIMO_ONNX_INTS, .ints = &axes, .n = 1},
            {.name = "keepdims", .type = MIMO_ONNX_INT, .i = 1}};
        const mimo_real eps = (mimo_real)DOT_EPS;
        const char *s = x->op(x, "ReduceSumSquare", &v, 1, at, 2);
        const char *c = x->constant(x, "eps", &eps, NULL, 0);
        s = s && c ? mimo_onnx_op2(x, "Max", s, c) : NULL;
        s = s ? mimo_onnx_op1(x, "Sqrt", s) : NULL;
        v = s ? mimo_onnx_op2(x, "Div", v, s) : NULL;
    }
    long long perm[MIMO_MAX_RANK + 1];
    int r = 0, rank = p->shape.rank;
    mimo_shape s = {2, {1, 1}};
    perm[r++] = 0;
    if (!last)
        perm[r++] = ax + 1;
    for (int k = 0; k < rank; k++)
        if (k != ax) {
            perm[r++] = k + 1;
            s.dim[last ? 0 : 1] *= p->shape.dim[k];
        }
    if (last)
        perm[r++] = ax + 1;
    s.dim[last ? 1 : 0] = p->shape.dim[ax];
    v = v ? mimo_onnx_transpose(x, v, perm, rank + 1) : NULL;
    return v ? mimo_onnx_reshape(x, v, &s) : NULL;
}

/* x as (N, Fx, K) MatMul y as (N, K, Fy), reshaped to the output's shape */
static const char *dot_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                            const char *const *in, char *err, size_t len)
{
    (void)err, (void)len;
    int norm = ((const dot_args *)n->args)->normalize;
    const mimo_node *px = MIMO_PARENT(g, n, 0), *py = MIMO_PARENT(g, n, 1);
    const char *a = dot_onnx_side(x, px, dot_axis(n, 0, px->shape.rank), norm, 1, in[0]);
    const char *b = dot_onnx_side(x, py, dot_axis(n, 1, py->shape.rank), norm, 0, in[1]);
    const char *m = a && b ? mimo_onnx_op2(x, "MatMul", a, b) : NULL;
    return m ? mimo_onnx_reshape(x, m, &n->shape) : NULL;
}

const mimo_kind mimo_kind_dot = {
    .name = "dot",
    .args = dot_keys,
    .n_args = (int)(sizeof dot_keys / sizeof *dot_keys),
    .args_size = sizeof(dot_args),
    .finish = dot_finish,
    .node_size = sizeof(dot_node),
    .dot_shape = "hexagon",
    .infer = dot_infer,
    .buffers = dot_buffers,
    .forward = dot_forward,
    .backward = dot_backward,
    .describe = dot_describe,
    .flops = dot_flops,
    .scratch = dot_scratch,
    .onnx = dot_onnx,
};
