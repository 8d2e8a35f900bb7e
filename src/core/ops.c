/* ops.c — the op table: shape inference, forward and backward for each
 * layer type. Activations are (b, width) row-major; dense kernels (in, out).
 * Backward only accumulates (+=) into parents' dy and into the gradient
 * buffer, so fan-out, repeated parents and several heads sum correctly. */
#include <cblas.h>
#include <stdio.h>
#include <string.h>
#include <tgmath.h>

#include "core/graph_impl.h"

#define PARENT(g, n, k) (&(g)->nodes[(n)->in[k]])

/* ---- dense: z = x W + b, y = act(z) ---------------------------------- */

static int dense_infer(const mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    if (n->n_in != 1) {
        snprintf(err, len, "dense layer '%s' takes one input, got %d "
                 "(merge them first, e.g. with a concat layer)", n->name, n->n_in);
        return -1;
    }
    n->in_width = PARENT(g, n, 0)->width;
    return 0; /* width = units, set by the compiler */
}

static void dense_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                          int b)
{
    const mimo_real *x = PARENT(g, n, 0)->y;
    /* x is (b, in), W is (in, out), z is (b, out) */
    MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, n->width,
              n->in_width, 1, x, n->in_width, params + n->w_off, n->width, 0,
              n->z, n->width);
    mimo_act_forward(n->act, n->alpha, n->use_bias ? params + n->b_off : NULL,
                     n->z, n->y, b, n->width);
}

/* dx[:, lo:hi] += dz W[lo:hi, :]^T, the input columns whose gradient is
 * used (see dx_lo in graph_impl.h); then, with a = g->grad_alpha (1, or
 * -lr when grads is params: plain SGD in place), dW += a x^T dz and
 * db += a colsum(dz). dx comes first: it must read W before W changes. */
static void dense_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                           mimo_real *grads, int b)
{
    mimo_node *p = PARENT(g, n, 0);
    int in = n->in_width, out = n->width;
    mimo_real a = g->grad_alpha;
    if (!n->fused && n->dz != n->dy)
        mimo_act_backward(n->act, n->alpha, n->z, n->y, n->dy, n->dz, b, out);
    if (n->dx_hi > n->dx_lo)
        MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, b, n->dx_hi - n->dx_lo,
                  out, 1, n->dz, out, params + n->w_off + (size_t)n->dx_lo * out,
                  out, 1, p->dy + n->dx_lo, in);
    MIMO_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, b, a, p->y, in,
              n->dz, out, 1, grads + n->w_off, out);
    if (n->use_bias) {
        mimo_real *db = grads + n->b_off, *s = a == 1 ? db : g->col_scratch;
        if (s != db)
            memset(s, 0, sizeof *s * (size_t)out);
        for (int r = 0; r < b; r++)
            for (int j = 0; j < out; j++)
                s[j] += n->dz[(size_t)r * out + j];
        for (int j = 0; s != db && j < out; j++)
            db[j] += a * s[j];
    }
}

/* ---- activation layer: y = act(x) ------------------------------------ */

static int activation_infer(const mimo_graph *g, mimo_node *n, char *err,
                            size_t len)
{
    if (n->n_in != 1) {
        snprintf(err, len, "activation layer '%s' takes one input, got %d",
                 n->name, n->n_in);
        return -1;
    }
    n->width = PARENT(g, n, 0)->width;
    return 0;
}

static void activation_forward(mimo_graph *g, mimo_node *n,
                               const mimo_real *params, int b)
{
    (void)params;
    n->z = PARENT(g, n, 0)->y;
    mimo_act_forward(n->act, n->alpha, NULL, n->z, n->y, b, n->width);
}

static void activation_backward(mimo_graph *g, mimo_node *n,
                                const mimo_real *params, mimo_real *grads, int b)
{
    (void)params, (void)grads;
    mimo_node *p = PARENT(g, n, 0);
    if (!p->dy)
        return;
    if (!n->fused)
        mimo_act_backward(n->act, n->alpha, n->z, n->y, n->dy, n->dz, b, n->width);
    size_t len = (size_t)b * n->width;
    for (size_t i = 0; i < len; i++)
        p->dy[i] += n->dz[i];
}

/* ---- concat: y = [x_1, x_2, ...] along features ----------------------- */

static int concat_infer(const mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    (void)err, (void)len;
    n->width = 0;
    for (int k = 0; k < n->n_in; k++)
        n->width += PARENT(g, n, k)->width;
    return 0;
}

static void concat_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                           int b)
{
    (void)params;
    int off = 0;
    for (int k = 0; k < n->n_in; k++) {
        const mimo_node *p = PARENT(g, n, k);
        for (int r = 0; r < b; r++)
            memcpy(n->y + (size_t)r * n->width + off, p->y + (size_t)r * p->width,
                   sizeof(mimo_real) * (size_t)p->width);
        off += p->width;
    }
}

/* dx_k += dy[:, off_k : off_k + width_k], the slice of parent k's columns */
static void concat_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                            mimo_real *grads, int b)
{
    (void)params, (void)grads;
    int off = 0;
    for (int k = 0; k < n->n_in; k++) {
        mimo_node *p = PARENT(g, n, k);
        if (p->dy)
            for (int r = 0; r < b; r++)
                for (int j = 0; j < p->width; j++)
                    p->dy[(size_t)r * p->width + j] +=
                        n->dy[(size_t)r * n->width + off + j];
        off += p->width;
    }
}

/* ---- elementwise merges: add, subtract, multiply, average ------------- */

static int same_width_infer(const mimo_graph *g, mimo_node *n, char *err,
                            size_t len)
{
    const char *t = mimo_layer_type_name((mimo_layer_type)n->type);
    if (n->type == MIMO_LAYER_SUBTRACT && n->n_in != 2) {
        snprintf(err, len, "subtract layer '%s' takes exactly 2 inputs, got %d",
                 n->name, n->n_in);
        return -1;
    }
    if (n->n_in < 2 && n->type != MIMO_LAYER_SUBTRACT) {
        snprintf(err, len, "%s layer '%s' needs at least 2 inputs, got %d", t,
                 n->name, n->n_in);
        return -1;
    }
    n->width = PARENT(g, n, 0)->width;
    for (int k = 1; k < n->n_in; k++) {
        const mimo_node *p = PARENT(g, n, k);
        if (p->width != n->width) {
            snprintf(err, len, "%s layer '%s': input '%s' has %d features but "
                     "'%s' has %d; all inputs must have the same width", t,
                     n->name, p->name, p->width, PARENT(g, n, 0)->name, n->width);
            return -1;
        }
    }
    return 0;
}

/* add: y = sum_k x_k; subtract: y = x_0 - x_1; average: y = sum_k x_k / K */
static void sum_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                        int b)
{
    (void)params;
    size_t len = (size_t)b * n->width;
    mimo_real scale = n->type == MIMO_LAYER_AVERAGE ? (mimo_real)1 / n->n_in : 1;
    memcpy(n->y, PARENT(g, n, 0)->y, sizeof(mimo_real) * len);
    for (int k = 1; k < n->n_in; k++) {
        const mimo_real *x = PARENT(g, n, k)->y;
        mimo_real sign = n->type == MIMO_LAYER_SUBTRACT ? -1 : 1;
        for (size_t i = 0; i < len; i++)
            n->y[i] += sign * x[i];
    }
    if (scale != 1)
        for (size_t i = 0; i < len; i++)
            n->y[i] *= scale;
}

/* dx_k += c_k dy with c = 1 (add), +-1 (subtract), 1/K (average) */
static void sum_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                         mimo_real *grads, int b)
{
    (void)params, (void)grads;
    size_t len = (size_t)b * n->width;
    for (int k = 0; k < n->n_in; k++) {
        mimo_node *p = PARENT(g, n, k);
        mimo_real c = n->type == MIMO_LAYER_AVERAGE ? (mimo_real)1 / n->n_in
                      : (n->type == MIMO_LAYER_SUBTRACT && k == 1) ? -1 : 1;
        if (p->dy)
            for (size_t i = 0; i < len; i++)
                p->dy[i] += c * n->dy[i];
    }
}

/* y = prod_k x_k */
static void multiply_forward(mimo_graph *g, mimo_node *n,
                             const mimo_real *params, int b)
{
    (void)params;
    size_t len = (size_t)b * n->width;
    memcpy(n->y, PARENT(g, n, 0)->y, sizeof(mimo_real) * len);
    for (int k = 1; k < n->n_in; k++) {
        const mimo_real *x = PARENT(g, n, k)->y;
        for (size_t i = 0; i < len; i++)
            n->y[i] *= x[i];
    }
}

/* dx_k += dy * prod_{j != k} x_j (no division: exact when some x_j = 0) */
static void multiply_backward(mimo_graph *g, mimo_node *n,
                              const mimo_real *params, mimo_real *grads, int b)
{
    (void)params, (void)grads;
    size_t len = (size_t)b * n->width;
    for (int k = 0; k < n->n_in; k++) {
        mimo_node *p = PARENT(g, n, k);
        if (!p->dy)
            continue;
        for (size_t i = 0; i < len; i++) {
            mimo_real prod = n->dy[i];
            for (int j = 0; j < n->n_in; j++)
                if (j != k)
                    prod *= PARENT(g, n, j)->y[i];
            p->dy[i] += prod;
        }
    }
}

/* ---- masked softmax: from [logits, mask] ------------------------------
 * y_i = m_i exp(x_i) / sum_j m_j exp(x_j), m_i = (mask_i > 0.5); rows with
 * no position on are all zero. dx_i = y_i (dy_i - sum_j y_j dy_j); the mask
 * gets no gradient. */

static int masked_softmax_infer(const mimo_graph *g, mimo_node *n, char *err,
                                size_t len)
{
    if (n->n_in != 2) {
        snprintf(err, len, "masked_softmax layer '%s' takes [logits, mask], "
                 "got %d inputs", n->name, n->n_in);
        return -1;
    }
    const mimo_node *x = PARENT(g, n, 0), *m = PARENT(g, n, 1);
    if (x->width != m->width) {
        snprintf(err, len, "masked_softmax layer '%s': logits '%s' have %d "
                 "features but mask '%s' has %d", n->name, x->name, x->width,
                 m->name, m->width);
        return -1;
    }
    n->width = x->width;
    return 0;
}

static void masked_softmax_forward(mimo_graph *g, mimo_node *n,
                                   const mimo_real *params, int b)
{
    (void)params;
    const mimo_real *x = PARENT(g, n, 0)->y, *m = PARENT(g, n, 1)->y;
    int w = n->width;
    for (int r = 0; r < b; r++) {
        const mimo_real *xr = x + (size_t)r * w, *mr = m + (size_t)r * w;
        mimo_real *yr = n->y + (size_t)r * w, mx = 0, s = 0;
        int any = 0;
        for (int j = 0; j < w; j++)
            if (mr[j] > (mimo_real)0.5 && (!any || xr[j] > mx))
                mx = xr[j], any = 1;
        for (int j = 0; j < w; j++) {
            yr[j] = mr[j] > (mimo_real)0.5 ? exp(xr[j] - mx) : 0;
            s += yr[j];
        }
        for (int j = 0; j < w && any; j++)
            yr[j] /= s;
    }
}

static void masked_softmax_backward(mimo_graph *g, mimo_node *n,
                                    const mimo_real *params, mimo_real *grads,
                                    int b)
{
    (void)params, (void)grads;
    mimo_node *p = PARENT(g, n, 0);
    if (!p->dy)
        return;
    mimo_act_backward(MIMO_ACT_SOFTMAX, 0, NULL, n->y, n->dy, n->dz, b, n->width);
    size_t len = (size_t)b * n->width;
    for (size_t i = 0; i < len; i++)
        p->dy[i] += n->dz[i];
}

const mimo_op mimo_ops[MIMO_LAYER_COUNT] = {
    [MIMO_LAYER_DENSE] = {dense_infer, dense_forward, dense_backward},
    [MIMO_LAYER_ACTIVATION] = {activation_infer, activation_forward,
                               activation_backward},
    [MIMO_LAYER_CONCAT] = {concat_infer, concat_forward, concat_backward},
    [MIMO_LAYER_ADD] = {same_width_infer, sum_forward, sum_backward},
    [MIMO_LAYER_SUBTRACT] = {same_width_infer, sum_forward, sum_backward},
    [MIMO_LAYER_MULTIPLY] = {same_width_infer, multiply_forward,
                             multiply_backward},
    [MIMO_LAYER_AVERAGE] = {same_width_infer, sum_forward, sum_backward},
    [MIMO_LAYER_MASKED_SOFTMAX] = {masked_softmax_infer, masked_softmax_forward,
                                   masked_softmax_backward},
};
