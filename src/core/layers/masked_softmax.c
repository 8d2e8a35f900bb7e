/* masked_softmax.c — softmax over the positions a mask allows, from
 * [logits, mask]: y_i = m_i exp(x_i) / sum_j m_j exp(x_j) with
 * m_i = (mask_i > 0.5); rows with no position on are all zero.
 * dx_i = y_i (dy_i - sum_j y_j dy_j); the mask gets no gradient. */
#include <stdio.h>
#include <string.h>
#include <tgmath.h>

#include "core/kind.h"
#include "core/onnx.h"

static int masked_softmax_infer(mimo_graph *g, mimo_node *n, char *err,
                                size_t len)
{
    if (n->n_in != 2) {
        snprintf(err, len, "masked_softmax layer '%s' takes [logits, mask], "
                 "got %d inputs", n->name, n->n_in);
        return -1;
    }
    const mimo_node *x = MIMO_PARENT(g, n, 0), *m = MIMO_PARENT(g, n, 1);
    if (x->width != m->width || x->shape.rank != m->shape.rank) {
        snprintf(err, len, "masked_softmax layer '%s': logits '%s' have %d "
                 "features but mask '%s' has %d", n->name, x->name, x->width,
                 m->name, m->width);
        return -1;
    }
    n->shape = x->shape;
    return 0;
}

/* y (B, width) and the scratch gradient dz */
static void masked_softmax_buffers(mimo_graph *g, mimo_node *n, mimo_arena *a)
{
    size_t len = (size_t)g->max_batch * (size_t)n->width;
    n->y = mimo_arena_take(a, len);
    n->dz = mimo_arena_take(a, len);
}

static void masked_softmax_forward(mimo_graph *g, mimo_node *n,
                                   const mimo_real *params, int b)
{
    (void)params;
    const mimo_real *x = MIMO_PARENT(g, n, 0)->y, *m = MIMO_PARENT(g, n, 1)->y;
    int w = mimo_shape_last(&n->shape), rows = b * mimo_shape_rows(&n->shape);
    for (int r = 0; r < rows; r++) {
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
    mimo_node *p = MIMO_PARENT(g, n, 0);
    int w = mimo_shape_last(&n->shape);
    if (!p->dy)
        return;
    mimo_act_backward(MIMO_ACT_SOFTMAX, 0, NULL, n->y, n->dy, n->dz,
                      b * mimo_shape_rows(&n->shape), w);
    size_t len = (size_t)b * n->width;
    for (size_t i = 0; i < len; i++)
        p->dy[i] += n->dz[i];
}

/* Over the sample's values flattened: the positions off get the lowest
 * float before the softmax (their exp is 0 beside any position on) and
 * are zeroed after it, which also zeroes a row with none on. */
static const char *masked_softmax_onnx(mimo_onnx *x, const mimo_graph *g,
                                       const mimo_node *n, const char *const *in,
                                       char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    const mimo_onnx_attr last = {.name = "axis", .type = MIMO_ONNX_INT, .i = -1};
    const mimo_real half = (mimo_real)0.5, lowest = (mimo_real)-3.4028234e38f;
    const mimo_shape flat = {1, {n->width}};
    const char *xs = mimo_onnx_reshape(x, in[0], &flat);
    const char *ms = mimo_onnx_reshape(x, in[1], &flat);
    const char *on = mimo_onnx_op2(x, "Greater", ms, x->constant(x, "half", &half, NULL, 0));
    const char *sel[3] = {on, xs, x->constant(x, "lowest", &lowest, NULL, 0)};
    const char *z = on && xs && sel[2] ? x->op(x, "Where", sel, 3, NULL, 0) : NULL;
    const char *p = z ? x->op(x, "Softmax", &z, 1, &last, 1) : NULL;
    const mimo_onnx_attr to_float = {.name = "to", .type = MIMO_ONNX_INT, .i = 1};
    const char *m01 = on ? x->op(x, "Cast", &on, 1, &to_float, 1) : NULL;
    return mimo_onnx_reshape(x, mimo_onnx_op2(x, "Mul", p, m01), &n->shape);
}

const mimo_kind mimo_kind_masked_softmax = {
    .name = "masked_softmax",
    .dot_shape = "hexagon",
    .flags = MIMO_KIND_PROBABILITIES | MIMO_KIND_MASK_INPUT,
    .infer = masked_softmax_infer,
    .buffers = masked_softmax_buffers,
    .forward = masked_softmax_forward,
    .backward = masked_softmax_backward,
    .onnx = masked_softmax_onnx,
};
