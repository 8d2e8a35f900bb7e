/* dense.c — the dense layer: z = x W + b, y = act(z), on the last axis
 * (Keras): on a (k, d) sample every position goes through the same
 * kernel W (d, units). Tensors: kernel (in, units), bias (units).
 * With train.precision bf16 (core/bf16.h) the three products take bf16
 * copies of x, W and dz and accumulate in float32; the bias, the
 * activation and every gradient stay float32. */
#include <cblas.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <tgmath.h>

#include "core/bf16.h"
#include "core/kind.h"
#include "core/onnx.h"

typedef struct {
    int units;
    mimo_act activation;
    double alpha;        /* leaky_relu 0.3, elu 1.0 unless given */
    int use_bias;
    mimo_init kernel_initializer, bias_initializer;
} dense_args;

static const mimo_arg dense_keys[] = {
    {MIMO_ARG(dense_args, units), .type = MIMO_ARG_INT, .required = 1, .lo = 1,
     .hi = INT_MAX, .expect = "an integer > 0"},
    {MIMO_ARG(dense_args, activation), .type = MIMO_ARG_ACT},
    {MIMO_ARG(dense_args, alpha), .type = MIMO_ARG_REAL, .lo = -HUGE_VAL,
     .hi = HUGE_VAL, .expect = "a number"},
    {MIMO_ARG(dense_args, use_bias), .type = MIMO_ARG_BOOL},
    {MIMO_ARG(dense_args, kernel_initializer), .type = MIMO_ARG_INIT},
    {MIMO_ARG(dense_args, bias_initializer), .type = MIMO_ARG_INIT},
};

static void dense_defaults(void *p)
{
    dense_args *a = p;
    a->activation = MIMO_ACT_LINEAR;
    a->alpha = NAN;
    a->use_bias = 1;
    a->kernel_initializer = (mimo_init){MIMO_INIT_GLOROT_UNIFORM, 0, 0};
    a->bias_initializer = (mimo_init){MIMO_INIT_ZEROS, 0, 0};
}

static int dense_finish(void *p, char *err, size_t len)
{
    dense_args *a = p;
    (void)err, (void)len;
    if (isnan(a->alpha))
        a->alpha = mimo_act_alpha_default(a->activation);
    return 0;
}

/* Per node: the input's last axis, positions per sample, and the input
 * columns whose gradient is used (a concat of raw inputs and branches
 * needs only its branches' columns); empty if none. In bf16: the
 * products' primitives and the bf16 copies of x and W (made by the
 * forward, read again by the backward, as z is) and of dz. */
typedef struct {
    int in, rows, use_bias;
    int dx_lo, dx_hi;
    mimo_bf16_mm *mm;        /* NULL: float32 */
    mimo_bf16 *xb, *wb, *dzb; /* (B rows, in), (in, units), (B rows, units) */
    int fwd_bf16;            /* the last forward's products were bf16 */
} dense_node;

static int dense_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const dense_args *a = n->args;
    dense_node *d = n->priv;
    if (mimo_check_inputs(n, 1, 1, " (merge them first, e.g. with a concat "
                          "layer)", err, len))
        return -1;
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    d->in = mimo_shape_last(&p->shape);
    d->rows = mimo_shape_rows(&p->shape);
    d->use_bias = a->use_bias;
    /* bf16 products when the graph has them (decided before buffers) */
    if (g->bf16 && !d->mm)
        d->mm = mimo_bf16_mm_new();
    n->shape = p->shape;
    n->shape.dim[n->shape.rank - 1] = a->units;
    n->act = a->activation;
    n->alpha = (mimo_real)a->alpha;
    mimo_shape ks = {2, {d->in, a->units}}, bs = {1, {a->units}};
    if (mimo_node_add_tensor(n, "kernel", &ks, a->kernel_initializer, d->in,
                             a->units) < 0 ||
        (a->use_bias && mimo_node_add_tensor(n, "bias", &bs, a->bias_initializer,
                                             d->in, a->units) < 0))
        return -1; /* out of memory: no message */
    return 0;
}

/* z (B, units); y over z when act' follows from y and no fused loss needs
 * the logits; dz is dy itself when the activation is linear. */
static void dense_buffers(mimo_graph *g, mimo_node *n, mimo_arena *a)
{
    dense_node *d = n->priv;
    size_t len = (size_t)g->max_batch * (size_t)n->width;
    n->z = mimo_arena_take(a, len);
    n->y = !n->fused && mimo_act_derivative_from_y(n->act, n->alpha)
               ? n->z : mimo_arena_take(a, len);
    n->dz = n->act == MIMO_ACT_LINEAR && !n->fused ? n->dy
                                                   : mimo_arena_take(a, len);
    mimo_node_grad_span(g, n->in[0], &d->dx_lo, &d->dx_hi);
    if (d->mm) {
        size_t m = (size_t)g->max_batch * (size_t)d->rows, out = (size_t)n->width / d->rows;
        d->xb = (mimo_bf16 *)mimo_arena_take(a, mimo_bf16_reals(m * (size_t)d->in));
        d->wb = (mimo_bf16 *)mimo_arena_take(a, mimo_bf16_reals((size_t)d->in * out));
        d->dzb = (mimo_bf16 *)mimo_arena_take(a, mimo_bf16_reals(m * out));
    }
}

/* oneDNN failed (out of memory, or a shape it has only its reference
 * kernel for): this layer runs float32 from now on */
static void drop_bf16(mimo_node *n)
{
    dense_node *d = n->priv;
    fprintf(stderr, "mimo: dense layer '%s': no bf16 product for this shape; "
            "float32 from now on\n", n->name);
    mimo_bf16_mm_free(d->mm);
    d->mm = NULL;
}

/* z = x W in bf16: x and W into their bf16 copies (kept for backward) */
static int forward_bf16(dense_node *d, const mimo_real *x, const mimo_real *W, int m,
                        int out, mimo_real *z)
{
    mimo_bf16_from(d->xb, x, (size_t)m * (size_t)d->in);
    mimo_bf16_from(d->wb, W, (size_t)d->in * (size_t)out);
    return mimo_bf16_gemm(d->mm, 0, 0, m, out, d->in, d->xb, d->in, d->wb, out, 0, z,
                          out);
}

static void dense_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                          int b)
{
    dense_node *d = n->priv;
    const mimo_real *x = MIMO_PARENT(g, n, 0)->y;
    const mimo_real *W = params + n->tensors[0].off;
    int m = b * d->rows, out = mimo_shape_last(&n->shape);
    d->fwd_bf16 = d->mm && !forward_bf16(d, x, W, m, out, n->z);
    if (d->mm && !d->fwd_bf16)
        drop_bf16(n);
    /* x is (m, in), W is (in, out), z is (m, out) */
    if (!d->fwd_bf16)
        MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, out, d->in, 1, x,
                  d->in, W, out, 0, n->z, out);
    mimo_act_forward(n->act, n->alpha,
                     d->use_bias ? params + n->tensors[1].off : NULL, n->z, n->y,
                     m, out);
}

/* dx[:, lo:hi] += dz W[lo:hi, :]^T in float32 */
static void dx_f32(const dense_node *d, const mimo_real *dz, const mimo_real *W, int m,
                   int out, mimo_real *dx)
{
    MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, m, d->dx_hi - d->dx_lo, out, 1,
              dz, out, W + (size_t)d->dx_lo * out, out, 1, dx + d->dx_lo, d->in);
}

/* The backward's products in bf16: dz into its copy; dW += x^T dz and
 * dx[:, lo:hi] += dz W[lo:hi, :]^T over the forward's copies of x and W
 * (a transposed operand is a transposed descriptor: no copy). 0, or -1
 * with nothing added (dW, made first, failed). */
static int backward_bf16(mimo_node *n, mimo_node *p, const mimo_real *W,
                         mimo_real *dW, int m)
{
    dense_node *d = n->priv;
    int in = d->in, out = mimo_shape_last(&n->shape), dx = d->dx_hi > d->dx_lo;
    if (!dx && !dW)
        return 0;
    mimo_bf16_from(d->dzb, n->dz, (size_t)m * (size_t)out);
    if (dW && mimo_bf16_gemm(d->mm, 1, 0, in, out, m, d->xb, in, d->dzb, out, 1, dW, out))
        return -1;
    if (dx && mimo_bf16_gemm(d->mm, 0, 1, m, d->dx_hi - d->dx_lo, out, d->dzb, out,
                             d->wb + (size_t)d->dx_lo * out, out, 1, p->dy + d->dx_lo,
                             in)) {
        drop_bf16(n); /* dW is in: dx alone in float32 */
        dx_f32(d, n->dz, W, m, out, p->dy);
    }
    return 0;
}

/* dx[:, lo:hi] += dz W[lo:hi, :]^T, the input columns whose gradient is
 * used; dW += x^T dz and db += colsum(dz). */
static void dense_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                           mimo_real *grads, int b)
{
    dense_node *d = n->priv;
    mimo_node *p = MIMO_PARENT(g, n, 0);
    int m = b * d->rows, in = d->in, out = mimo_shape_last(&n->shape);
    const mimo_real *W = params + n->tensors[0].off;
    /* trainable: false: no update, dx only */
    mimo_real *dW = n->tensors[0].trained ? grads + n->tensors[0].off : NULL;
    if (!n->fused && n->dz != n->dy)
        mimo_act_backward(n->act, n->alpha, n->z, n->y, n->dy, n->dz, m, out);
    int done = d->fwd_bf16 && d->mm && !backward_bf16(n, p, W, dW, m);
    if (!done && d->fwd_bf16 && d->mm)
        drop_bf16(n); /* nothing added yet: all of it in float32 */
    if (!done && d->dx_hi > d->dx_lo)
        dx_f32(d, n->dz, W, m, out, p->dy);
    if (!done && dW)
        MIMO_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, m, 1, p->y, in,
                  n->dz, out, 1, dW, out);
    if (d->use_bias && n->tensors[1].trained) {
        mimo_real *db = grads + n->tensors[1].off;
        for (int r = 0; r < m; r++)
            for (int j = 0; j < out; j++)
                db[j] += n->dz[(size_t)r * out + j];
    }
}

/* The heads' slices at once (core/stacked.c): dz and dW, db per head;
 * dx of all nt slices as one product of nt * m rows (the slices follow
 * one another in dz and in the parent's dy alike). bf16 products keep
 * per-call copies: those run once per head (-1). */
static int dense_backward_stacked(mimo_graph *g, mimo_node *n, const mimo_real *params,
                                  mimo_real *const *grads, int nt, int b)
{
    dense_node *d = n->priv;
    if (d->fwd_bf16 && d->mm)
        return -1;
    mimo_node *p = MIMO_PARENT(g, n, 0);
    int m = b * d->rows, in = d->in, out = mimo_shape_last(&n->shape);
    size_t zs = (size_t)m * (size_t)out; /* a slice of dy and dz */
    const mimo_real *W = params + n->tensors[0].off;
    for (int t = 0; t < nt; t++) {
        mimo_real *dz = n->dz + (size_t)t * zs;
        if (!grads[t]) /* a head between that does not reach n: zeros */
            memset(dz, 0, sizeof *dz * zs);
        else if (n->dz != n->dy)
            mimo_act_backward(n->act, n->alpha, n->z, n->y, n->dy + (size_t)t * zs, dz,
                              m, out);
        if (grads[t] && n->tensors[0].trained)
            MIMO_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, m, 1, p->y, in,
                      dz, out, 1, grads[t] + n->tensors[0].off, out);
        for (int r = 0; grads[t] && d->use_bias && n->tensors[1].trained && r < m; r++)
            for (int j = 0; j < out; j++)
                grads[t][n->tensors[1].off + (size_t)j] += dz[(size_t)r * out + j];
    }
    if (d->dx_hi > d->dx_lo)
        dx_f32(d, n->dz, W, nt * m, out, p->dy);
    return 0;
}

static void dense_describe(const mimo_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "dense(%s)", mimo_act_name(n->act));
}

/* forward x W, backward x^T dz, and dz W^T for the columns that need it */
static double dense_flops(const mimo_graph *g, const mimo_node *n)
{
    (void)g;
    const dense_node *d = n->priv;
    double out = mimo_shape_last(&n->shape), mn = 2.0 * d->in * out;
    return d->rows * (2 * mn + 2.0 * (d->dx_hi - d->dx_lo) * out);
}

/* x W (+ b), then the activation: MatMul acts on the last axis as the
 * kernel's rows do. */
static const char *dense_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                              const char *const *in, char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    const dense_node *d = n->priv;
    const char *z = mimo_onnx_op2(x, "MatMul", in[0], mimo_onnx_tensor(x, n, 0));
    if (d->use_bias)
        z = mimo_onnx_op2(x, "Add", z, mimo_onnx_tensor(x, n, 1));
    return mimo_onnx_act(x, n->act, n->alpha, z);
}

/* bf16: the copies of x, W and dz (in reals of the arena) */
static size_t dense_scratch(const mimo_graph *g, const mimo_node *n, size_t b)
{
    (void)g;
    const dense_node *d = n->priv;
    size_t m = b * (size_t)d->rows, out = (size_t)mimo_shape_last(&n->shape);
    return d->mm ? mimo_bf16_reals(m * (size_t)d->in) +
                       mimo_bf16_reals((size_t)d->in * out) + mimo_bf16_reals(m * out)
                 : 0;
}

static void dense_release(mimo_node *n)
{
    dense_node *d = n->priv;
    mimo_bf16_mm_free(d->mm);
}

/* masks: the output keeps the input's time axis (ARCHITECTURE.md, Masks) */
static int dense_masking(const mimo_graph *g, const mimo_node *n)
{
    (void)g, (void)n;
    return MIMO_MASK_PASS;
}

const mimo_kind mimo_kind_dense = {
    .name = "dense",
    .args = dense_keys,
    .n_args = (int)(sizeof dense_keys / sizeof *dense_keys),
    .args_size = sizeof(dense_args),
    .defaults = dense_defaults,
    .finish = dense_finish,
    .node_size = sizeof(dense_node),
    .dot_shape = "box",
    .flags = MIMO_KIND_LOGITS,
    .infer = dense_infer,
    .masking = dense_masking,
    .buffers = dense_buffers,
    .forward = dense_forward,
    .backward = dense_backward,
    .backward_stacked = dense_backward_stacked,
    .describe = dense_describe,
    .flops = dense_flops,
    .scratch = dense_scratch,
    .release = dense_release,
    .onnx = dense_onnx,
};
