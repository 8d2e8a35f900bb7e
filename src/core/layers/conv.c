/* conv.c — 2-D and 1-D convolution (Keras Conv2D and Conv1D), channels
 * last, lowered to ONE matrix product over the rank's whole batch slice
 * (im2col). A (timesteps, features) sequence is the image (1, T, C), so
 * conv1d is conv2d with kh = 1, plus dilation (taps dil apart) and causal
 * padding (window.h):
 *   col = patches(x)   (b oh ow, K), K = kh kw c_in: each output position's
 *                      window of x in (i, j, c) order, zeros where it
 *                      reads padding
 *   z = col W + bias   W the kernel (kh, kw, c_in, filters) read as a
 *   y = act(z)         (K, filters) matrix; z, y (b, oh, ow, filters)
 * Backward: dz = dy act'(z); dW += a col^T dz; db += a colsum(dz);
 * dcol = dz W^T, added back window by window into dx (col2im).
 * Tensors: kernel (kh, kw, c_in, filters) — conv1d (kw, c_in, filters) —
 * and bias (filters), as Keras stores them, so weights move to and from Keras and h5py as they are.
 * A 1x1 kernel with stride 1 needs no patches: col is x itself. */
#include <cblas.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <tgmath.h>

#include "core/layers/window.h"
#include "core/onnx.h"
#include "core/par.h"

#ifdef MIMO_REAL_DOUBLE
#define GEMV cblas_dgemv
#else
#define GEMV cblas_sgemv
#endif

typedef struct {
    int filters;
    mimo_ints kernel_size, strides;
    int padding;         /* MIMO_PAD_*: valid, same (conv1d: causal too) */
    mimo_ints dilation_rate; /* conv1d */
    mimo_act activation;
    double alpha;        /* leaky_relu 0.3, elu 1.0 unless given */
    int use_bias;
    mimo_init kernel_initializer, bias_initializer;
} conv2d_args;

static const mimo_arg conv2d_keys[] = {
    {MIMO_ARG(conv2d_args, filters), .type = MIMO_ARG_INT, .required = 1,
     .lo = 1, .hi = INT_MAX, .expect = "an integer > 0"},
    {MIMO_ARG(conv2d_args, kernel_size), .type = MIMO_ARG_INTS, .required = 1,
     .lo = 1, .hi = 1 << 20, .expect = "an integer > 0"},
    {MIMO_ARG(conv2d_args, strides), .type = MIMO_ARG_INTS, .lo = 1,
     .hi = 1 << 20, .expect = "an integer > 0"},
    {MIMO_ARG(conv2d_args, padding), .type = MIMO_ARG_CHOICE,
     .choices = mimo_window_paddings},
    {MIMO_ARG(conv2d_args, activation), .type = MIMO_ARG_ACT},
    {MIMO_ARG(conv2d_args, alpha), .type = MIMO_ARG_REAL, .lo = -HUGE_VAL,
     .hi = HUGE_VAL, .expect = "a number"},
    {MIMO_ARG(conv2d_args, use_bias), .type = MIMO_ARG_BOOL},
    {MIMO_ARG(conv2d_args, kernel_initializer), .type = MIMO_ARG_INIT},
    {MIMO_ARG(conv2d_args, bias_initializer), .type = MIMO_ARG_INIT},
};

static const mimo_arg conv1d_keys[] = {
    {MIMO_ARG(conv2d_args, filters), .type = MIMO_ARG_INT, .required = 1,
     .lo = 1, .hi = INT_MAX, .expect = "an integer > 0"},
    {MIMO_ARG(conv2d_args, kernel_size), .type = MIMO_ARG_INTS, .required = 1,
     .lo = 1, .hi = 1 << 20, .expect = "an integer > 0"},
    {MIMO_ARG(conv2d_args, strides), .type = MIMO_ARG_INTS, .lo = 1,
     .hi = 1 << 20, .expect = "an integer > 0"},
    {MIMO_ARG(conv2d_args, padding), .type = MIMO_ARG_CHOICE,
     .choices = mimo_window_paddings1d},
    {MIMO_ARG(conv2d_args, dilation_rate), .type = MIMO_ARG_INTS, .lo = 1,
     .hi = 1 << 20, .expect = "an integer > 0"},
    {MIMO_ARG(conv2d_args, activation), .type = MIMO_ARG_ACT},
    {MIMO_ARG(conv2d_args, alpha), .type = MIMO_ARG_REAL, .lo = -HUGE_VAL,
     .hi = HUGE_VAL, .expect = "a number"},
    {MIMO_ARG(conv2d_args, use_bias), .type = MIMO_ARG_BOOL},
    {MIMO_ARG(conv2d_args, kernel_initializer), .type = MIMO_ARG_INIT},
    {MIMO_ARG(conv2d_args, bias_initializer), .type = MIMO_ARG_INIT},
};

static const mimo_ints one = {1, {1}};

static void conv2d_defaults(void *p)
{
    conv2d_args *a = p;
    a->strides = one;
    a->dilation_rate = one;
    a->activation = MIMO_ACT_LINEAR;
    a->alpha = NAN;
    a->use_bias = 1;
    a->kernel_initializer = (mimo_init){MIMO_INIT_GLOROT_UNIFORM, 0, 0};
    a->bias_initializer = (mimo_init){MIMO_INIT_ZEROS, 0, 0};
}

static int conv2d_finish(void *p, char *err, size_t len)
{
    conv2d_args *a = p;
    int pair[2];
    if (isnan(a->alpha))
        a->alpha = mimo_act_alpha_default(a->activation);
    if (mimo_window_pair(&a->kernel_size, &one, "kernel_size", pair, err, len) ||
        mimo_window_pair(&a->strides, &one, "strides", pair, err, len))
        return -1;
    return 0;
}

/* Keras: one kernel size, stride and dilation, not both a stride and a
 * dilation above 1 */
static int conv1d_finish(void *p, char *err, size_t len)
{
    conv2d_args *a = p;
    int k, s, d;
    if (isnan(a->alpha))
        a->alpha = mimo_act_alpha_default(a->activation);
    if (mimo_window_one(&a->kernel_size, &one, "kernel_size", &k, err, len) ||
        mimo_window_one(&a->strides, &one, "strides", &s, err, len) ||
        mimo_window_one(&a->dilation_rate, &one, "dilation_rate", &d, err, len))
        return -1;
    if (s > 1 && d > 1) {
        snprintf(err, len, "strides %d and dilation_rate %d: one of them must "
                 "be 1 (as Keras)", s, d);
        return -1;
    }
    return 0;
}

/* Per node: the window, K = kh kw c_in, whether the patches are x itself
 * (direct) and whether the parent takes a gradient (dx); work buffers. */
typedef struct {
    mimo_window w;
    int K, filters, use_bias, direct, dx;
    mimo_real *col;   /* (B oh ow, K): patches; in backward their gradient */
    mimo_real *ones;  /* (B oh ow) ones: the bias gradient as one gemv */
} conv_node;

static int conv_setup(mimo_node *n, const mimo_shape *ks, char *err, size_t len);

static int conv2d_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const conv2d_args *a = n->args;
    conv_node *d = n->priv;
    int k[2], s[2];
    mimo_window_pair(&a->kernel_size, &one, "kernel_size", k, err, len);
    mimo_window_pair(&a->strides, &one, "strides", s, err, len);
    if (mimo_window_infer(g, n, k, s, a->padding, "kernel_size", &d->w, err, len))
        return -1;
    n->shape = (mimo_shape){3, {d->w.out_h, d->w.out_w, a->filters}};
    mimo_shape ks = {4, {k[0], k[1], d->w.c, a->filters}};
    return conv_setup(n, &ks, err, len);
}

/* conv1d: the window over (T, C), output (out_T, filters), kernel
 * (kw, c_in, filters). */
static int conv1d_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const conv2d_args *a = n->args;
    conv_node *d = n->priv;
    int k, s, dil;
    mimo_window_one(&a->kernel_size, &one, "kernel_size", &k, err, len);
    mimo_window_one(&a->strides, &one, "strides", &s, err, len);
    mimo_window_one(&a->dilation_rate, &one, "dilation_rate", &dil, err, len);
    if (mimo_window_infer1d(g, n, k, s, dil, a->padding, "kernel_size", &d->w,
                            err, len))
        return -1;
    n->shape = (mimo_shape){2, {d->w.out_w, a->filters}};
    mimo_shape ks = {3, {k, d->w.c, a->filters}};
    return conv_setup(n, &ks, err, len);
}

/* What both kinds share once the window is known: K, the tensors. */
static int conv_setup(mimo_node *n, const mimo_shape *ks, char *err, size_t len)
{
    const conv2d_args *a = n->args;
    conv_node *d = n->priv;
    const mimo_window *w = &d->w;
    d->K = w->kh * w->kw * w->c;
    if ((long long)d->K * a->filters > INT_MAX / 2) {
        snprintf(err, len, "%s layer '%s': a kernel of %dx%dx%dx%d values is "
                 "too large", n->kind->name, n->name, w->kh, w->kw, w->c,
                 a->filters);
        return -1;
    }
    d->filters = a->filters;
    d->use_bias = a->use_bias;
    d->direct = w->kh == 1 && w->kw == 1 && w->sh == 1 && w->sw == 1;
    n->act = a->activation;
    n->alpha = (mimo_real)a->alpha;
    /* Keras' fans for a kernel: the receptive field times the channels */
    double fan_in = d->K, fan_out = (double)w->kh * w->kw * a->filters;
    mimo_shape bs = {1, {a->filters}};
    if (mimo_node_add_tensor(n, "kernel", ks, a->kernel_initializer, fan_in,
                             fan_out) < 0 ||
        (a->use_bias && mimo_node_add_tensor(n, "bias", &bs, a->bias_initializer,
                                             fan_in, fan_out) < 0))
        return -1; /* out of memory: no message */
    return 0;
}

/* Output positions of b samples: the rows of the product. */
static size_t positions(const conv_node *d, size_t b)
{
    return b * (size_t)d->w.out_h * (size_t)d->w.out_w;
}

/* z, y, dz as dense.c; the patches (unless direct), the kernel gradient
 * held back while the kernel is read, and a column of ones. */
static void conv2d_buffers(mimo_graph *g, mimo_node *n, mimo_arena *a)
{
    conv_node *d = n->priv;
    size_t len = (size_t)g->max_batch * (size_t)n->width;
    size_t rows = positions(d, (size_t)g->max_batch);
    n->z = mimo_arena_take(a, len);
    n->y = !n->fused && mimo_act_derivative_from_y(n->act, n->alpha)
               ? n->z : mimo_arena_take(a, len);
    n->dz = n->act == MIMO_ACT_LINEAR && !n->fused ? n->dy
                                                   : mimo_arena_take(a, len);
    d->dx = MIMO_PARENT(g, n, 0)->dy != NULL;
    d->col = d->direct ? NULL : mimo_arena_take(a, rows * (size_t)d->K);
    d->ones = d->use_bias ? mimo_arena_take(a, rows) : NULL;
    for (size_t r = 0; d->ones && r < rows; r++)
        d->ones[r] = 1;
}

/* The taps [j0, j1) of the window at input column x0, taps dil apart,
 * that lie inside the input (tap j reads column x0 + j dil). */
static void inside(int x0, int k, int dil, int in, int *j0, int *j1)
{
    *j0 = x0 < 0 ? (-x0 + dil - 1) / dil : 0;
    *j1 = in - x0 <= 0 ? 0 : (in - x0 + dil - 1) / dil;
    if (*j1 > k)
        *j1 = k;
    if (*j1 < *j0)
        *j1 = *j0;
}

/* One output row's patches column by column, for short runs (a window row
 * of fewer than 16 values, e.g. 3x3 over one channel) and dilated windows
 * (whose rows are no one run of x): for each (i, j, c) a strided pass over
 * ox, without the per-run overhead. */
static void im2col_line_narrow(const mimo_window *w, const mimo_real *xs, int y0,
                               mimo_real *dst)
{
    const int C = w->c, K = w->kh * w->kw * C;
    for (int i = 0; i < w->kh; i++) {
        int iy = y0 + i, in = iy >= 0 && iy < w->in_h;
        const mimo_real *row = xs + (size_t)(in ? iy : 0) * w->in_w * C;
        for (int j = 0; j < w->kw; j++)
            for (int c = 0; c < C; c++) {
                mimo_real *d = dst + (i * w->kw + j) * C + c;
                for (int ox = 0; ox < w->out_w; ox++) {
                    int ix = ox * w->sw - w->pad_left + j * w->dil;
                    d[(size_t)ox * K] = in && ix >= 0 && ix < w->in_w
                                            ? row[(size_t)ix * C + c] : 0;
                }
            }
    }
}

/* col (b oh ow, K) = the windows of x (b, in_h, in_w, c): row (s, oy, ox)
 * holds x[s, oy sh - pt + i, ox sw - pl + j, :] at (i kw + j) c, zeros for
 * padding. Each window row is one contiguous run of x. */
static void im2col(const mimo_window *w, const mimo_real *x, mimo_real *col, int b)
{
    const int C = w->c, run = w->kw * C, K = w->kh * run;
    const size_t in_s = (size_t)w->in_h * w->in_w * C;
    const int lines = b * w->out_h;
    MIMO_PAR_FOR((long)lines * w->out_w * K >= MIMO_PAR_MIN, int r = 0, r < lines, r++, {
        int s = r / w->out_h, oy = r % w->out_h, y0 = oy * w->sh - w->pad_top;
        const mimo_real *xs = x + (size_t)s * in_s;
        mimo_real *dst = col + (size_t)r * w->out_w * K;
        if (run < 16 || w->dil > 1) {
            im2col_line_narrow(w, xs, y0, dst);
            continue;
        }
        for (int ox = 0; ox < w->out_w; ox++) {
            int x0 = ox * w->sw - w->pad_left, j0, j1;
            inside(x0, w->kw, 1, w->in_w, &j0, &j1);
            for (int i = 0; i < w->kh; i++, dst += run) {
                int iy = y0 + i;
                if (iy < 0 || iy >= w->in_h || j1 == j0) {
                    memset(dst, 0, sizeof *dst * (size_t)run);
                    continue;
                }
                const mimo_real *src = xs + ((size_t)iy * w->in_w + x0 + j0) * C;
                int lo = j0 * C, hi = j1 * C;
                for (int t = 0; t < lo; t++)
                    dst[t] = 0;
                for (int t = lo; t < hi; t++)
                    dst[t] = src[t - lo];
                for (int t = hi; t < run; t++)
                    dst[t] = 0;
            }
        }
    });
}

/* dx (b, in_h, in_w, c) += each row of dcol added back onto the window it
 * came from (padding dropped). Samples in parallel: their dx are apart. */
static void col2im(const mimo_window *w, const mimo_real *dcol, mimo_real *dx, int b)
{
    const int C = w->c, run = w->kw * C, K = w->kh * run;
    const size_t in_s = (size_t)w->in_h * w->in_w * C;
    const size_t out_s = (size_t)w->out_h * w->out_w * K;
    MIMO_PAR_FOR((long)b * (long)out_s >= MIMO_PAR_MIN, int s = 0, s < b, s++, {
        mimo_real *xs = dx + (size_t)s * in_s;
        const mimo_real *src = dcol + (size_t)s * out_s;
        for (int oy = 0; oy < w->out_h; oy++) {
            int y0 = oy * w->sh - w->pad_top;
            for (int ox = 0; ox < w->out_w; ox++, src += K) {
                int x0 = ox * w->sw - w->pad_left, j0, j1;
                inside(x0, w->kw, w->dil, w->in_w, &j0, &j1);
                for (int i = 0; i < w->kh; i++) {
                    int iy = y0 + i;
                    if (iy < 0 || iy >= w->in_h || j1 == j0)
                        continue;
                    /* taps dil apart: runs of C (dil 1: one run) */
                    int per = w->dil == 1 ? j1 - j0 : 1;
                    for (int j = j0; j < j1; j += per) {
                        mimo_real *dst = xs + ((size_t)iy * w->in_w + x0 +
                                               (size_t)j * w->dil) * C;
                        const mimo_real *row = src + (size_t)i * run + (size_t)j * C;
                        int len = per * C;
                        for (int t = 0; t < len; t++)
                            dst[t] += row[t];
                    }
                }
            }
        }
    });
}

static void conv2d_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                           int b)
{
    conv_node *d = n->priv;
    const mimo_real *x = MIMO_PARENT(g, n, 0)->y;
    int m = (int)positions(d, (size_t)b), N = d->filters;
    if (!d->direct)
        im2col(&d->w, x, d->col, b);
    /* col is (m, K), W is (K, filters), z is (m, filters) */
    MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, N, d->K, 1,
              d->direct ? x : d->col, d->K, params + n->tensors[0].off, N, 0,
              n->z, N);
    mimo_act_forward(n->act, n->alpha,
                     d->use_bias ? params + n->tensors[1].off : NULL, n->z, n->y,
                     m, N);
}

/* dz = dy act'(z); dW += col^T dz; dcol = dz W^T (over the patches dW
 * was computed from), then col2im into dx; db += dz^T 1. A frozen tensor
 * (trainable: false) gets no gradient: it lies past the trained ones,
 * outside grads. */
static void conv2d_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                            mimo_real *grads, int b)
{
    conv_node *d = n->priv;
    mimo_node *p = MIMO_PARENT(g, n, 0);
    int m = (int)positions(d, (size_t)b), N = d->filters, K = d->K;
    int tw = n->tensors[0].trained, tb = d->use_bias && n->tensors[1].trained;
    const mimo_real *W = params + n->tensors[0].off;
    mimo_real *dW = tw ? grads + n->tensors[0].off : NULL;
    if (!n->fused && n->dz != n->dy)
        mimo_act_backward(n->act, n->alpha, n->z, n->y, n->dy, n->dz, m, N);
    if (d->direct) { /* col is x: dx += dz W^T, then dW */
        if (d->dx)
            MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, m, K, N, 1, n->dz,
                      N, W, N, 1, p->dy, K);
        if (tw)
            MIMO_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, m, 1, p->y, K,
                      n->dz, N, 1, dW, N);
    } else {
        if (tw)
            MIMO_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, m, 1, d->col,
                      K, n->dz, N, 1, dW, N);
        if (d->dx) {
            MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, m, K, N, 1, n->dz, N,
                      W, N, 0, d->col, K);
            col2im(&d->w, d->col, p->dy, b);
        }
    }
    if (tb)
        GEMV(CblasRowMajor, CblasTrans, m, N, 1, n->dz, N, d->ones, 1, 1,
             grads + n->tensors[1].off, 1);
}

static void conv2d_describe(const mimo_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "%s(%s)", n->kind->name, mimo_act_name(n->act));
}

/* forward col W, backward col^T dz, and dz W^T when the input takes a
 * gradient: each (oh ow, K) x (K, filters) per sample */
static double conv2d_flops(const mimo_graph *g, const mimo_node *n)
{
    const conv_node *d = n->priv;
    double mn = 2.0 * d->w.out_h * d->w.out_w * d->K * d->filters;
    return mn * (2 + (MIMO_PARENT(g, n, 0)->dy != NULL));
}

/* the patches and the ones */
static size_t conv2d_scratch(const mimo_graph *g, const mimo_node *n, size_t b)
{
    (void)g;
    const conv_node *d = n->priv;
    size_t rows = positions(d, b);
    return (d->direct ? 0 : rows * (size_t)d->K) +
           (d->use_bias ? rows : 0);
}

/* Conv on the transposed input; the kernel (kh, kw, c_in, filters), the
 * checkpoint's Keras layout, transposed to ONNX's (filters, c_in, kh, kw)
 * by a Transpose of the constant (folded by runtimes). */
static const char *conv_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                             const char *const *in, char *err, size_t len)
{
    (void)err, (void)len;
    static const long long oihw[4] = {3, 2, 0, 1};
    const conv_node *d = n->priv;
    const mimo_tensor *k = &n->tensors[0];
    /* conv1d's kernel (kw, c_in, filters) is the image kernel (1, kw, ...) */
    const long long dims[4] = {d->w.kh, d->w.kw, d->w.c, d->filters};
    const char *more[2] = {
        mimo_onnx_transpose(x, x->constant(x, k->name, x->params + k->off, dims, 4),
                            oihw, 4),
        d->use_bias ? mimo_onnx_tensor(x, n, 1) : NULL};
    const char *z = mimo_window_onnx_node(x, g, n, &d->w, "Conv", in[0], more,
                                          d->use_bias ? 2 : 1);
    return mimo_onnx_act(x, n->act, n->alpha, z);
}

const mimo_kind mimo_kind_conv2d = {
    .name = "conv2d",
    .args = conv2d_keys,
    .n_args = (int)(sizeof conv2d_keys / sizeof *conv2d_keys),
    .args_size = sizeof(conv2d_args),
    .defaults = conv2d_defaults,
    .finish = conv2d_finish,
    .node_size = sizeof(conv_node),
    .dot_shape = "box",
    .flags = MIMO_KIND_LOGITS,
    .infer = conv2d_infer,
    .buffers = conv2d_buffers,
    .forward = conv2d_forward,
    .backward = conv2d_backward,
    .describe = conv2d_describe,
    .flops = conv2d_flops,
    .scratch = conv2d_scratch,
    .onnx = conv_onnx,
};

/* masks: same and causal padding with stride 1 keep the time axis, step
 * for step; a strided or valid conv1d would misalign it */
static int conv1d_masking(const mimo_graph *g, const mimo_node *n)
{
    (void)g;
    const conv_node *d = n->priv;
    return d->w.sw == 1 && d->w.out_w == d->w.in_w ? MIMO_MASK_PASS : 0;
}

const mimo_kind mimo_kind_conv1d = {
    .name = "conv1d",
    .args = conv1d_keys,
    .n_args = (int)(sizeof conv1d_keys / sizeof *conv1d_keys),
    .args_size = sizeof(conv2d_args),
    .defaults = conv2d_defaults,
    .finish = conv1d_finish,
    .node_size = sizeof(conv_node),
    .dot_shape = "box",
    .flags = MIMO_KIND_LOGITS,
    .infer = conv1d_infer,
    .masking = conv1d_masking,
    .buffers = conv2d_buffers,
    .forward = conv2d_forward,
    .backward = conv2d_backward,
    .describe = conv2d_describe,
    .flops = conv2d_flops,
    .scratch = conv2d_scratch,
    .onnx = conv_onnx,
};
