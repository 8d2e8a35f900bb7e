/* pool.c — pooling over channels-last (height, width, channels) samples
 * and (timesteps, features) sequences, eight kinds (Keras' MaxPooling2D,
 * AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D and their
 * 1D forms). They share one file because they share everything but the
 * reduction and the rank: a sequence is the image (1, T, C) (window.h),
 * and a global pooling is a pooling whose window is the whole image or
 * sequence, with the output (channels) (or (1, 1, channels), (1,
 * channels) with keepdims).
 *   max:  y = max over the window;  dx[argmax] += dy. Ties go to the first
 *         maximum in window order (row by row), the same every run; padding
 *         ('same') is never the maximum.
 *   avg:  y = mean over the window's inputs (padding not counted, as
 *         Keras);  dx += dy / count on each of them.
 * No parameters; max pooling keeps each output's argmax (its place in the
 * window) from forward for backward. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/layers/window.h"
#include "core/onnx.h"
#include "core/par.h"

typedef struct {
    mimo_ints pool_size, strides;  /* strides default to pool_size */
    int padding;
} pool_args;

static const mimo_arg pool_keys[] = {
    {MIMO_ARG(pool_args, pool_size), .type = MIMO_ARG_INTS, .lo = 1,
     .hi = 1 << 20, .expect = "an integer > 0"},
    {MIMO_ARG(pool_args, strides), .type = MIMO_ARG_INTS, .lo = 1,
     .hi = 1 << 20, .expect = "an integer > 0"},
    {MIMO_ARG(pool_args, padding), .type = MIMO_ARG_CHOICE,
     .choices = mimo_window_paddings},
};

static const mimo_ints two = {1, {2}};

static const mimo_arg pool1d_keys[] = {
    {MIMO_ARG(pool_args, pool_size), .type = MIMO_ARG_INTS, .lo = 1,
     .hi = 1 << 20, .expect = "an integer > 0"},
    {MIMO_ARG(pool_args, strides), .type = MIMO_ARG_INTS, .lo = 1,
     .hi = 1 << 20, .expect = "an integer > 0"},
    {MIMO_ARG(pool_args, padding), .type = MIMO_ARG_CHOICE,
     .choices = mimo_window_paddings},
};

static void pool_defaults(void *p) { ((pool_args *)p)->pool_size = two; }

static int pool_finish(void *p, char *err, size_t len)
{
    const pool_args *a = p;
    int pair[2];
    if (mimo_window_pair(&a->pool_size, &two, "pool_size", pair, err, len) ||
        mimo_window_pair(&a->strides, &a->pool_size, "strides", pair, err, len))
        return -1;
    return 0;
}

static int pool1d_finish(void *p, char *err, size_t len)
{
    const pool_args *a = p;
    int v;
    if (mimo_window_one(&a->pool_size, &two, "pool_size", &v, err, len) ||
        mimo_window_one(&a->strides, &a->pool_size, "strides", &v, err, len))
        return -1;
    return 0;
}

typedef struct {
    int keepdims;
} global_args;

static const mimo_arg global_keys[] = {
    {MIMO_ARG(global_args, keepdims), .type = MIMO_ARG_BOOL},
};

typedef struct {
    mimo_window w;
    int max;          /* max, else average */
    mimo_real *arg;   /* max: (B, oh, ow, c) each maximum's i kw + j */
} pool_node;

/* The global 1-D pools read a mask (masked timesteps left out); the other
 * pools cannot honour one. */
static int global1d_masking(const mimo_graph *g, const mimo_node *n)
{
    (void)g, (void)n;
    return MIMO_MASK_USE;
}

static int is_max(const mimo_node *n)
{
    return n->kind == &mimo_kind_max_pool2d || n->kind == &mimo_kind_global_max_pool2d ||
           n->kind == &mimo_kind_max_pool1d || n->kind == &mimo_kind_global_max_pool1d;
}

static int pool_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const pool_args *a = n->args;
    pool_node *d = n->priv;
    int k[2], s[2];
    mimo_window_pair(&a->pool_size, &two, "pool_size", k, err, len);
    mimo_window_pair(&a->strides, &a->pool_size, "strides", s, err, len);
    if (mimo_window_infer(g, n, k, s, a->padding, "pool_size", &d->w, err, len))
        return -1;
    d->max = is_max(n);
    n->shape = (mimo_shape){3, {d->w.out_h, d->w.out_w, d->w.c}};
    return 0;
}

/* The window is the whole (h, w): one output per channel. */
static int global_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const global_args *a = n->args;
    pool_node *d = n->priv;
    static const int unit[2] = {1, 1};
    if (mimo_window_infer(g, n, unit, unit, 0, "pool_size", &d->w, err, len))
        return -1;
    d->w.kh = d->w.in_h, d->w.kw = d->w.in_w;
    d->w.out_h = d->w.out_w = 1;
    d->max = is_max(n);
    n->shape = a->keepdims ? (mimo_shape){3, {1, 1, d->w.c}}
                           : (mimo_shape){1, {d->w.c}};
    return 0;
}

static int pool1d_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const pool_args *a = n->args;
    pool_node *d = n->priv;
    int k, s;
    mimo_window_one(&a->pool_size, &two, "pool_size", &k, err, len);
    mimo_window_one(&a->strides, &a->pool_size, "strides", &s, err, len);
    if (mimo_window_infer1d(g, n, k, s, 1, a->padding, "pool_size", &d->w, err,
                            len))
        return -1;
    d->max = is_max(n);
    n->shape = (mimo_shape){2, {d->w.out_w, d->w.c}};
    return 0;
}

/* The window is the whole sequence: one output per feature. */
static int global1d_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const global_args *a = n->args;
    pool_node *d = n->priv;
    if (mimo_window_infer1d(g, n, 1, 1, 1, MIMO_PAD_VALID, "pool_size", &d->w,
                            err, len))
        return -1;
    d->w.kw = d->w.in_w;
    d->w.out_w = 1;
    d->max = is_max(n);
    n->shape = a->keepdims ? (mimo_shape){2, {1, d->w.c}}
                           : (mimo_shape){1, {d->w.c}};
    return 0;
}

static void pool_buffers(mimo_graph *g, mimo_node *n, mimo_arena *a)
{
    pool_node *d = n->priv;
    size_t len = (size_t)g->max_batch * (size_t)n->width;
    n->y = mimo_arena_take(a, len);
    d->arg = d->max ? mimo_arena_take(a, len) : NULL;
}

/* The window of output (oy, ox) inside the input: rows [i0, i1), columns
 * [j0, j1) of the window, whose (0, 0) is input (y0, x0). */
typedef struct {
    int y0, x0, i0, i1, j0, j1;
} span;

static span window_at(const mimo_window *w, int oy, int ox)
{
    span p;
    p.y0 = oy * w->sh - w->pad_top, p.x0 = ox * w->sw - w->pad_left;
    p.i0 = p.y0 < 0 ? -p.y0 : 0, p.j0 = p.x0 < 0 ? -p.x0 : 0;
    p.i1 = w->in_h - p.y0 < w->kh ? w->in_h - p.y0 : w->kh;
    p.j1 = w->in_w - p.x0 < w->kw ? w->in_w - p.x0 : w->kw;
    return p;
}

/* y = max(y, x) over C channels, arg = t where x is strictly greater (the
 * first maximum stays); branch-free, so it vectorizes (random data would
 * mispredict a branch half the time). */
static void max_in(const mimo_real *restrict x, mimo_real *restrict y,
                   mimo_real *restrict arg, mimo_real t, int C)
{
    for (int c = 0; c < C; c++) { /* a, t small integers: exact */
        mimo_real v = x[c], cur = y[c], gt = (mimo_real)(v > cur);
        y[c] = v > cur ? v : cur;
        arg[c] += gt * (t - arg[c]);
    }
}

static void add_in(const mimo_real *restrict x, mimo_real *restrict y, int C)
{
    for (int c = 0; c < C; c++)
        y[c] += x[c];
}

/* dx += dy where the maximum was at t (branch-free: vectorizes) */
static void add_at(const mimo_real *restrict arg, mimo_real t,
                   const mimo_real *restrict dy, mimo_real *restrict dx, int C)
{
    for (int c = 0; c < C; c++) {
        mimo_real v = dy[c], a = arg[c];
        dx[c] += a == t ? v : 0;
    }
}

static void add_scaled(const mimo_real *restrict dy, mimo_real s,
                       mimo_real *restrict dx, int C)
{
    for (int c = 0; c < C; c++)
        dx[c] += dy[c] * s;
}

/* One output position's C values: the max and its place, or the mean. */
static void pool_one(const mimo_window *w, int max, const mimo_real *xs, span p,
                     mimo_real *restrict y, mimo_real *restrict arg)
{
    const int C = w->c;
    const mimo_real *first = xs + ((size_t)(p.y0 + p.i0) * w->in_w + p.x0 + p.j0) * C;
    for (int c = 0; c < C; c++)
        y[c] = first[c];
    if (max)
        for (int c = 0; c < C; c++)
            arg[c] = (mimo_real)(p.i0 * w->kw + p.j0);
    for (int i = p.i0; i < p.i1; i++)
        for (int j = p.j0; j < p.j1; j++) {
            if (i == p.i0 && j == p.j0)
                continue;
            const mimo_real *x = xs + ((size_t)(p.y0 + i) * w->in_w + p.x0 + j) * C;
            if (max)
                max_in(x, y, arg, (mimo_real)(i * w->kw + j), C);
            else
                add_in(x, y, C);
        }
    if (!max) {
        mimo_real inv = (mimo_real)1 / (mimo_real)((p.i1 - p.i0) * (p.j1 - p.j0));
        for (int c = 0; c < C; c++)
            y[c] *= inv;
    }
}

/* A global 1-D pool over the timesteps whose mask is 1: the mean (zeros
 * when every step is masked), or the maximum and its step (-1: none). */
static void masked_forward(const pool_node *d, const mimo_real *x,
                           const mimo_real *mask, mimo_real *y, int b)
{
    const int T = d->w.in_w, C = d->w.c;
    for (int s = 0; s < b; s++) {
        const mimo_real *m = mask + (size_t)s * T, *xs = x + (size_t)s * T * C;
        mimo_real *ys = y + (size_t)s * C, *arg = d->max ? d->arg + (size_t)s * C : NULL;
        int count = 0;
        for (int c = 0; c < C; c++)
            ys[c] = 0;
        for (int c = 0; arg && c < C; c++)
            arg[c] = -1;
        for (int t = 0; t < T; t++) {
            if (m[t] == 0)
                continue;
            const mimo_real *xt = xs + (size_t)t * C;
            for (int c = 0; c < C; c++) {
                if (!d->max)
                    ys[c] += xt[c];
                else if (count == 0 || xt[c] > ys[c])
                    ys[c] = xt[c], arg[c] = (mimo_real)t;
            }
            count++;
        }
        for (int c = 0; !d->max && count > 0 && c < C; c++)
            ys[c] /= (mimo_real)count;
    }
}

static void masked_backward(const pool_node *d, const mimo_real *mask,
                            const mimo_real *dy, mimo_real *dx, int b)
{
    const int T = d->w.in_w, C = d->w.c;
    for (int s = 0; s < b; s++) {
        const mimo_real *m = mask + (size_t)s * T, *dys = dy + (size_t)s * C;
        mimo_real *xs = dx + (size_t)s * T * C;
        if (d->max) {
            for (int c = 0; c < C; c++) {
                int t = (int)d->arg[(size_t)s * C + c];
                if (t >= 0)
                    xs[(size_t)t * C + c] += dys[c];
            }
            continue;
        }
        int count = 0;
        for (int t = 0; t < T; t++)
            count += m[t] != 0;
        for (int t = 0; t < T; t++)
            for (int c = 0; m[t] != 0 && c < C; c++)
                xs[(size_t)t * C + c] += dys[c] / (mimo_real)count;
    }
}

static void pool_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                         int b)
{
    (void)params;
    const pool_node *d = n->priv;
    const mimo_window *w = &d->w;
    const mimo_real *x = MIMO_PARENT(g, n, 0)->y;
    if (MIMO_PARENT(g, n, 0)->mask) {
        masked_forward(d, x, MIMO_PARENT(g, n, 0)->mask, n->y, b);
        return;
    }
    const size_t in_s = (size_t)w->in_h * w->in_w * w->c;
    const size_t out_s = (size_t)w->out_h * w->out_w * w->c;
    MIMO_PAR_FOR((long)b * (long)out_s * w->kh * w->kw >= MIMO_PAR_MIN,
                 int s = 0, s < b, s++, {
        for (int oy = 0; oy < w->out_h; oy++)
            for (int ox = 0; ox < w->out_w; ox++) {
                size_t o = (size_t)s * out_s + ((size_t)oy * w->out_w + ox) * w->c;
                pool_one(w, d->max, x + (size_t)s * in_s, window_at(w, oy, ox),
                         n->y + o, d->max ? d->arg + o : NULL);
            }
    });
}

/* max: dx at each maximum += dy (small windows: a masked pass per window
 * position, which vectorizes; large ones, as global pooling: a scatter);
 * avg: dx += dy / count over the window. Samples in parallel: their dx are
 * apart. */
static void pool_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                          mimo_real *grads, int b)
{
    (void)params, (void)grads;
    const pool_node *d = n->priv;
    const mimo_window *w = &d->w;
    mimo_real *dx = MIMO_PARENT(g, n, 0)->dy;
    const int C = w->c;
    const size_t in_s = (size_t)w->in_h * w->in_w * C;
    const size_t out_s = (size_t)w->out_h * w->out_w * C;
    if (!dx)
        return;
    if (MIMO_PARENT(g, n, 0)->mask) {
        masked_backward(d, MIMO_PARENT(g, n, 0)->mask, n->dy, dx, b);
        return;
    }
    MIMO_PAR_FOR((long)b * (long)out_s * w->kh * w->kw >= MIMO_PAR_MIN,
                 int s = 0, s < b, s++, {
        for (int oy = 0; oy < w->out_h; oy++)
            for (int ox = 0; ox < w->out_w; ox++) {
                size_t o = (size_t)s * out_s + ((size_t)oy * w->out_w + ox) * C;
                const mimo_real *dy = n->dy + o;
                mimo_real *xs = dx + (size_t)s * in_s;
                span p = window_at(w, oy, ox);
                if (d->max && w->kh * w->kw > 16) {
                    for (int c = 0; c < C; c++) {
                        int t = (int)d->arg[o + (size_t)c];
                        int i = t / w->kw, j = t % w->kw;
                        xs[((size_t)(p.y0 + i) * w->in_w + p.x0 + j) * C + c] += dy[c];
                    }
                    continue;
                }
                mimo_real inv = (mimo_real)1 / (mimo_real)((p.i1 - p.i0) * (p.j1 - p.j0));
                for (int i = p.i0; i < p.i1; i++)
                    for (int j = p.j0; j < p.j1; j++) {
                        mimo_real *r = xs + ((size_t)(p.y0 + i) * w->in_w + p.x0 + j) * C;
                        if (d->max)
                            add_at(d->arg + o, (mimo_real)(i * w->kw + j), dy, r, C);
                        else
                            add_scaled(dy, inv, r, C);
                    }
            }
    });
}

static size_t pool_scratch(const mimo_graph *g, const mimo_node *n, size_t b)
{
    (void)g;
    const pool_node *d = n->priv;
    return d->max ? b * (size_t)n->width : 0;
}

/* A masked global 1-D pool of v (N, T, C) over the steps whose mask
 * (N, T) is true, as masked_forward: the sum of those steps over their
 * count, or their maximum (masked steps as -inf); a row with no step
 * left gives zeros. Then the node's shape. */
static const char *masked_pool_onnx(mimo_onnx *x, const mimo_node *n, const char *v,
                                    const char *mask)
{
    const pool_node *d = n->priv;
    const long long one = 1, two_ = 2;
    const mimo_real zero = 0, unit = 1, ninf = -INFINITY;
    const mimo_onnx_attr to = {.name = "to", .type = MIMO_ONNX_INT, .i = 1}; /* float */
    const mimo_onnx_attr keep = {.name = "keepdims", .type = MIMO_ONNX_INT, .i = 0};
    const mimo_onnx_attr axes = {.name = "axes", .type = MIMO_ONNX_INTS, .ints = &one,
                                 .n = 1};
    const char *ax = x->constant_i64(x, "axes", &one, 1);
    const char *m3 = mimo_onnx_op2(x, "Unsqueeze", mask, x->constant_i64(x, "axes", &two_, 1));
    const char *cf = x->op(x, "Cast", &mask, 1, &to, 1);
    const char *ci[2] = {cf, ax};
    const char *count = cf && ax ? x->op(x, "ReduceSum", ci, 2, NULL, 0) : NULL; /* (N, 1) */
    const char *sel[3] = {m3, v, x->constant(x, d->max ? "ninf" : "zero",
                                             d->max ? &ninf : &zero, NULL, 0)};
    const char *kept = m3 && sel[2] ? x->op(x, "Where", sel, 3, NULL, 0) : NULL;
    const char *y;
    if (d->max) {
        const char *mx = kept ? x->op(x, "ReduceMax", &kept, 1,
                                      (const mimo_onnx_attr[]){axes, keep}, 2) : NULL;
        const char *w[3] = {mimo_onnx_op2(x, "Greater", count,
                                          x->constant(x, "zero", &zero, NULL, 0)),
                            mx, x->constant(x, "zero", &zero, NULL, 0)};
        y = w[0] && mx && w[2] ? x->op(x, "Where", w, 3, NULL, 0) : NULL;
    } else {
        const char *si[2] = {kept, ax};
        const char *sum = kept && ax ? x->op(x, "ReduceSum", si, 2, &keep, 1) : NULL;
        y = mimo_onnx_op2(x, "Div", sum, mimo_onnx_op2(x, "Max", count,
                                                       x->constant(x, "one", &unit, NULL, 0)));
    }
    x->mask_used = 1;
    return mimo_onnx_reshape(x, y, &n->shape);
}

/* MaxPool or AveragePool (padding not counted, as Keras) over the
 * window; the global kinds are one window over the whole input, then the
 * node's shape ((c), or (1, 1, c) with keepdims). A masked input (the
 * global 1-D pools): masked_pool_onnx. */
static const char *pool_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                             const char *const *in, char *err, size_t len)
{
    (void)err, (void)len;
    const pool_node *d = n->priv;
    if (x->mask)
        return masked_pool_onnx(x, n, in[0], x->mask);
    return mimo_window_onnx_node(x, g, n, &d->w, d->max ? "MaxPool" : "AveragePool",
                                 in[0], NULL, 0);
}

#define POOL_KIND(NAME, ALIASES, ARGS, KEYS, DEFAULTS, FINISH, INFER, MASK)   \
    {                                                                         \
        .masking = MASK,                                                      \
        .name = NAME, .aliases = ALIASES, .args = KEYS,                       \
        .n_args = (int)(sizeof KEYS / sizeof *KEYS),                          \
        .args_size = sizeof(ARGS), .defaults = DEFAULTS, .finish = FINISH,    \
        .node_size = sizeof(pool_node), .dot_shape = "box", .infer = INFER,   \
        .buffers = pool_buffers, .forward = pool_forward,                     \
        .backward = pool_backward, .scratch = pool_scratch,                   \
        .onnx = pool_onnx,                                                    \
    }

/* Keras' long names (its short ones, MaxPool2D, ..., match the names) */
static const char *const max_aliases[] = {"max_pooling2d", NULL};
static const char *const avg_aliases[] = {"average_pooling2d", NULL};
static const char *const gavg_aliases[] = {"global_average_pooling2d", NULL};
static const char *const gmax_aliases[] = {"global_max_pooling2d", NULL};

static const char *const max1_aliases[] = {"max_pooling1d", NULL};
static const char *const avg1_aliases[] = {"average_pooling1d", NULL};
static const char *const gavg1_aliases[] = {"global_average_pooling1d", NULL};
static const char *const gmax1_aliases[] = {"global_max_pooling1d", NULL};

const mimo_kind mimo_kind_max_pool1d =
    POOL_KIND("max_pool1d", max1_aliases, pool_args, pool1d_keys, pool_defaults,
              pool1d_finish, pool1d_infer, NULL);
const mimo_kind mimo_kind_avg_pool1d =
    POOL_KIND("avg_pool1d", avg1_aliases, pool_args, pool1d_keys, pool_defaults,
              pool1d_finish, pool1d_infer, NULL);
const mimo_kind mimo_kind_global_avg_pool1d =
    POOL_KIND("global_avg_pool1d", gavg1_aliases, global_args, global_keys, NULL,
              NULL, global1d_infer, global1d_masking);
const mimo_kind mimo_kind_global_max_pool1d =
    POOL_KIND("global_max_pool1d", gmax1_aliases, global_args, global_keys, NULL,
              NULL, global1d_infer, global1d_masking);

const mimo_kind mimo_kind_max_pool2d =
    POOL_KIND("max_pool2d", max_aliases, pool_args, pool_keys, pool_defaults,
              pool_finish, pool_infer, NULL);
const mimo_kind mimo_kind_avg_pool2d =
    POOL_KIND("avg_pool2d", avg_aliases, pool_args, pool_keys, pool_defaults,
              pool_finish, pool_infer, NULL);
const mimo_kind mimo_kind_global_avg_pool2d =
    POOL_KIND("global_avg_pool2d", gavg_aliases, global_args, global_keys, NULL,
              NULL, global_infer, NULL);
const mimo_kind mimo_kind_global_max_pool2d =
    POOL_KIND("global_max_pool2d", gmax_aliases, global_args, global_keys, NULL,
              NULL, global_infer, NULL);
