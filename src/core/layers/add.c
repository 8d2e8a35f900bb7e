/* add.c — the add merge: y = x_1 + x_2 + ... (equal shapes);
 * dx_k += dy. */
#include "core/layers/merge.h"
#include "core/onnx.h"

static int add_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    if (mimo_check_inputs(n, 2, 0, "", err, len))
        return -1;
    return mimo_merge_same_shape(g, n, err, len);
}

static void add_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                        int b)
{
    (void)params;
    mimo_merge_sum_forward(g, n, b, 1, 1);
}

static void add_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                         mimo_real *grads, int b)
{
    (void)params, (void)grads;
    mimo_merge_sum_backward(g, n, b, 1, 1);
}

static const char *add_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                            const char *const *in, char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    return mimo_merge_sum_onnx(x, n, in, 1, 1);
}

const mimo_kind mimo_kind_add = {
    .name = "add",
    .dot_shape = "hexagon",
    .infer = add_infer,
    .forward = add_forward,
    .backward = add_backward,
    .onnx = add_onnx,
};
