/* dense.c — the dense layer: z = x W + b, y = act(z), on the last axis
 * (Keras): on a (k, d) sample every position goes through the same
 * kernel W (d, units). Tensors: kernel (in, units), bias (units). */
#include <cblas.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <tgmath.h>

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
 * needs only its branches' columns); empty if none. */
typedef struct {
    int in, rows, use_bias;
    int dx_lo, dx_hi;
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
}

static void dense_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                          int b)
{
    const dense_node *d = n->priv;
    const mimo_real *x = MIMO_PARENT(g, n, 0)->y;
    int m = b * d->rows, out = mimo_shape_last(&n->shape);
    /* x is (m, in), W is (in, out), z is (m, out) */
    MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, out, d->in, 1, x,
              d->in, params + n->tensors[0].off, out, 0, n->z, out);
    mimo_act_forward(n->act, n->alpha,
                     d->use_bias ? params + n->tensors[1].off : NULL, n->z, n->y,
                     m, out);
}

/* dx[:, lo:hi] += dz W[lo:hi, :]^T, the input columns whose gradient is
 * used; dW += x^T dz and db += colsum(dz). */
static void dense_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                           mimo_real *grads, int b)
{
    const dense_node *d = n->priv;
    mimo_node *p = MIMO_PARENT(g, n, 0);
    int m = b * d->rows, in = d->in, out = mimo_shape_last(&n->shape);
    size_t w_off = n->tensors[0].off;
    if (!n->fused && n->dz != n->dy)
        mimo_act_backward(n->act, n->alpha, n->z, n->y, n->dy, n->dz, m, out);
    if (d->dx_hi > d->dx_lo)
        MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, m, d->dx_hi - d->dx_lo,
                  out, 1, n->dz, out, params + w_off + (size_t)d->dx_lo * out,
                  out, 1, p->dy + d->dx_lo, in);
    if (n->tensors[0].trained) /* trainable: false: no update, dx only */
        MIMO_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, m, 1, p->y, in,
                  n->dz, out, 1, grads + w_off, out);
    if (d->use_bias && n->tensors[1].trained) {
        mimo_real *db = grads + n->tensors[1].off;
        for (int r = 0; r < m; r++)
            for (int j = 0; j < out; j++)
                db[j] += n->dz[(size_t)r * out + j];
    }
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
    .describe = dense_describe,
    .flops = dense_flops,
    .onnx = dense_onnx,
};
