/* flatten.c — flatten: a (k, d) or (h, w, c) sample as one axis of k d or
 * h w c values, in the same memory order. A view: no copy, no math (the
 * output and its gradient are the input's). */
#include "core/kind.h"
#include "core/onnx.h"

static int flatten_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    if (mimo_check_inputs(n, 1, 1, "", err, len))
        return -1;
    n->shape = (mimo_shape){1, {MIMO_PARENT(g, n, 0)->width}};
    return 0;
}

static void flatten_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                            int b)
{
    (void)params, (void)b;
    n->y = MIMO_PARENT(g, n, 0)->y;
}

/* dy is the parent's dy: consumers already added into it */
static void flatten_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                             mimo_real *grads, int b)
{
    (void)g, (void)n, (void)params, (void)grads, (void)b;
}

static const char *flatten_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                            const char *const *in, char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    return mimo_onnx_reshape(x, in[0], &n->shape);
}

const mimo_kind mimo_kind_flatten = {
    .name = "flatten",
    .dot_shape = "box",
    .flags = MIMO_KIND_VIEW,
    .infer = flatten_infer,
    .forward = flatten_forward,
    .backward = flatten_backward,
    .onnx = flatten_onnx,
};
