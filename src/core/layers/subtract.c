/* subtract.c — the subtract merge of exactly two inputs: y = a - b
 * (equal shapes); da += dy, db -= dy. */
#include "core/layers/merge.h"
#include "core/onnx.h"

static int subtract_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    if (mimo_check_inputs(n, 2, 2, "", err, len))
        return -1;
    return mimo_merge_same_shape(g, n, err, len);
}

static void subtract_forward(mimo_graph *g, mimo_node *n,
                             const mimo_real *params, int b)
{
    (void)params;
    mimo_merge_sum_forward(g, n, b, -1, 1);
}

static void subtract_backward(mimo_graph *g, mimo_node *n,
                              const mimo_real *params, mimo_real *grads, int b)
{
    (void)params, (void)grads;
    mimo_merge_sum_backward(g, n, b, -1, 1);
}

static const char *subtract_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                                 const char *const *in, char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    return mimo_merge_sum_onnx(x, n, in, -1, 1);
}

const mimo_kind mimo_kind_subtract = {
    .name = "subtract",
    .dot_shape = "hexagon",
    .infer = subtract_infer,
    .forward = subtract_forward,
    .backward = subtract_backward,
    .onnx = subtract_onnx,
};
