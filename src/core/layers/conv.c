/* conv.c — 2-D and 1-D convolution (Keras Conv2D and Conv1D), channels
 * last: the kinds (settings, shapes, tensors, export) and which engine
 * computes the products. A (timesteps, features) sequence is the image
 * (1, T, C), so conv1d is conv2d with kh = 1, plus dilation (taps dil
 * apart) and causal padding (window.h):
 *   z = x (*) W + bias   W the kernel (kh, kw, c_in, filters); z, y
 *   y = act(z)           (b, oh, ow, filters)
 * Backward: dz = dy act'(z); dW += x^T (*) dz; db += the sum of dz over
 * positions; dx += dz (*)^T W.
 * The products: oneDNN's convolution primitives (conv_dnnl.c) where the
 * build has them (MIMO_DNNL, float32), else im2col + sgemm over the whole
 * batch slice (conv_im2col.c; also the double build's, and the fallback
 * should oneDNN fail to make a primitive for some batch size at run time).
 * Tensors: kernel (kh, kw, c_in, filters) — conv1d (kw, c_in, filters) —
 * and bias (filters), as Keras stores them, so weights move to and from
 * Keras and h5py as they are, whichever engine runs. */
#include <cblas.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#include "core/layers/conv_dnnl.h"
#include "core/layers/conv_im2col.h"
#include "core/layers/window.h"
#include "core/onnx.h"

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

/* Per node: the window, K = kh kw c_in, whether the parent takes a
 * gradient (dx); the oneDNN plan, or im2col's work buffers. */
typedef struct {
    mimo_window w;
    int K, filters, use_bias, dx;
    mimo_conv_dnnl *dnnl; /* NULL: im2col */
    int bf16;             /* its products in bf16 (core/bf16.h) */
    mimo_real *col;   /* (B oh ow, K): patches; in backward their gradient */
    mimo_real *ones;  /* (B oh ow) ones: the bias gradient as one gemv */
    mimo_real *own;   /* col and ones malloc'd when oneDNN failed at run time */
} conv_node;

static int conv_setup(const mimo_graph *g, mimo_node *n, const mimo_shape *ks, char *err,
                      size_t len);

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
    return conv_setup(g, n, &ks, err, len);
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
    return conv_setup(g, n, &ks, err, len);
}

/* What both kinds share once the window is known: K, the tensors. */
static int conv_setup(const mimo_graph *g, mimo_node *n, const mimo_shape *ks, char *err,
                      size_t len)
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
    /* oneDNN where the build has it (NULL otherwise, or if it refuses
     * the geometry): decided here, before the buffers are counted; in
     * bf16 when the graph is (float32 if oneDNN has no bf16 kernel but
     * its reference one for the geometry) */
    d->dnnl = g->bf16 ? mimo_conv_dnnl_new(w, a->filters, a->use_bias, 1) : NULL;
    d->bf16 = d->dnnl != NULL;
    if (!d->dnnl)
        d->dnnl = mimo_conv_dnnl_new(w, a->filters, a->use_bias, 0);
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

/* z, y, dz as dense.c; for im2col the patches (unless direct) and a
 * column of ones (oneDNN keeps its own, conv_dnnl.c). */
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
    if (d->dnnl)
        return;
    size_t cols = mimo_conv_im2col_scratch(&d->w, g->max_batch);
    d->col = cols ? mimo_arena_take(a, cols) : NULL;
    d->ones = d->use_bias ? mimo_arena_take(a, rows) : NULL;
    for (size_t r = 0; d->ones && r < rows; r++)
        d->ones[r] = 1;
}

/* oneDNN failed to make a primitive (out of memory, or only its
 * reference kernel for a batch size not seen before): from now on this
 * layer runs im2col, in buffers of its own for the graph's largest
 * batch. Exits if even those cannot be had: a kernel cannot fail a step. */
static void drop_dnnl(const mimo_graph *g, mimo_node *n)
{
    conv_node *d = n->priv;
    size_t rows = positions(d, (size_t)g->max_batch);
    size_t cols = mimo_conv_im2col_scratch(&d->w, g->max_batch);
    mimo_conv_dnnl_free(d->dnnl);
    d->dnnl = NULL;
    d->own = malloc(sizeof(mimo_real) * (cols + rows + 1));
    if (!d->own) {
        fprintf(stderr, "mimo: %s layer '%s': out of memory for its work buffers\n",
                n->kind->name, n->name);
        exit(1);
    }
    d->col = cols ? d->own : NULL;
    d->ones = d->own + cols;
    for (size_t r = 0; r < rows; r++)
        d->ones[r] = 1;
}

static void conv2d_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                           int b)
{
    conv_node *d = n->priv;
    const mimo_real *x = MIMO_PARENT(g, n, 0)->y;
    const mimo_real *W = params + n->tensors[0].off;
    int m = (int)positions(d, (size_t)b);
    if (b == 0) /* a rank without rows (a collective layer's step): nothing,
                 * and no primitive for 0 rows, oneDNN's reference one */
        return;
    if (d->dnnl && mimo_conv_dnnl_forward(d->dnnl, b, x, W, n->z))
        drop_dnnl(g, n);
    if (!d->dnnl)
        mimo_conv_im2col_forward(&d->w, d->filters, b, x, W, d->col, n->z);
    mimo_act_forward(n->act, n->alpha,
                     d->use_bias ? params + n->tensors[1].off : NULL, n->z, n->y,
                     m, d->filters);
}

/* im2col's backward: dW += col^T dz over the patches of the forward, then
 * dx (which overwrites them), db += dz^T 1 */
static void im2col_backward(mimo_node *n, mimo_node *p, const mimo_real *W,
                            mimo_real *dW, mimo_real *db, int b)
{
    conv_node *d = n->priv;
    int m = (int)positions(d, (size_t)b);
    if (dW)
        mimo_conv_im2col_backward_weights(&d->w, d->filters, b, p->y, d->col, n->dz, dW);
    if (d->dx)
        mimo_conv_im2col_backward_data(&d->w, d->filters, b, n->dz, W, d->col, p->dy);
    if (db)
        GEMV(CblasRowMajor, CblasTrans, m, d->filters, 1, n->dz, d->filters, d->ones,
             1, 1, db, 1);
}

/* dz = dy act'(z); then dW, dx, db. A frozen tensor (trainable: false)
 * gets no gradient: it lies past the trained ones, outside grads. */
static void conv2d_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                            mimo_real *grads, int b)
{
    conv_node *d = n->priv;
    mimo_node *p = MIMO_PARENT(g, n, 0);
    int m = (int)positions(d, (size_t)b);
    const mimo_real *W = params + n->tensors[0].off;
    mimo_real *dW = n->tensors[0].trained ? grads + n->tensors[0].off : NULL;
    mimo_real *db = d->use_bias && n->tensors[1].trained ? grads + n->tensors[1].off
                                                         : NULL;
    if (b == 0) /* no rows: nothing to add (see conv2d_forward) */
        return;
    if (!n->fused && n->dz != n->dy)
        mimo_act_backward(n->act, n->alpha, n->z, n->y, n->dy, n->dz, m, d->filters);
    if (d->dnnl && (dW || db) &&
        mimo_conv_dnnl_backward_weights(d->dnnl, b, p->y, n->dz, dW, db)) {
        drop_dnnl(g, n); /* nothing added yet: all of it by im2col */
        mimo_conv_im2col_patches(&d->w, b, p->y, d->col);
    }
    if (d->dnnl) {
        if (d->dx && mimo_conv_dnnl_backward_data(d->dnnl, b, n->dz, W, p->dy)) {
            drop_dnnl(g, n); /* dW and db are in: dx alone */
            mimo_conv_im2col_backward_data(&d->w, d->filters, b, n->dz, W, d->col,
                                           p->dy);
        }
        return;
    }
    im2col_backward(n, p, W, dW, db, b);
}

static void conv2d_describe(const mimo_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "%s(%s)", n->kind->name, mimo_act_name(n->act));
}

/* forward x (*) W, backward x^T (*) dz, and dz (*)^T W when the input
 * takes a gradient: each (oh ow, K) x (K, filters) per sample */
static double conv2d_flops(const mimo_graph *g, const mimo_node *n)
{
    const conv_node *d = n->priv;
    double mn = 2.0 * d->w.out_h * d->w.out_w * d->K * d->filters;
    return mn * (2 + (MIMO_PARENT(g, n, 0)->dy != NULL));
}

/* oneDNN: its dx buffer (when the input takes a gradient) and the
 * kernel in each primitive's format (its scratchpad, the kernels' own
 * choice, apart); im2col: the patches and the ones */
static size_t conv2d_scratch(const mimo_graph *g, const mimo_node *n, size_t b)
{
    (void)g;
    const conv_node *d = n->priv;
    const mimo_window *w = &d->w;
    size_t in = b * (size_t)w->in_h * (size_t)w->in_w * (size_t)w->c;
    if (d->dnnl) /* bf16: x's and dz's copies, half a real a value */
        return (d->dx ? in : 0) + 3 * (size_t)d->K * (size_t)d->filters +
               (d->bf16 ? (in + positions(d, b) * (size_t)d->filters + 1) / 2 : 0);
    return mimo_conv_im2col_scratch(&d->w, (int)b) +
           (d->use_bias ? positions(d, b) : 0);
}

static void conv2d_release(mimo_node *n)
{
    conv_node *d = n->priv;
    mimo_conv_dnnl_free(d->dnnl);
    free(d->own);
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
    .release = conv2d_release,
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
    .release = conv2d_release,
    .onnx = conv_onnx,
};
