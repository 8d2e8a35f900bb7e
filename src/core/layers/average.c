/* average.c — the average merge: y = (x_1 + ... + x_K) / K (equal
 * shapes); dx_k += dy / K. */
#include "core/layers/merge.h"
#include "core/onnx.h"

static int average_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    if (mimo_check_inputs(n, 2, 0, "", err, len))
        return -1;
    return mimo_merge_same_shape(g, n, err, len);
}

static void average_forward(mimo_graph *g, mimo_node *n,
                            const mimo_real *params, int b)
{
    (void)params;
    mimo_merge_sum_forward(g, n, b, 1, (mimo_real)1 / n->n_in);
}

static void average_backward(mimo_graph *g, mimo_node *n,
                             const mimo_real *params, mimo_real *grads, int b)
{
    (void)params, (void)grads;
    mimo_merge_sum_backward(g, n, b, 1, (mimo_real)1 / n->n_in);
}

static const char *average_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                                const char *const *in, char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    return mimo_merge_sum_onnx(x, n, in, 1, (mimo_real)1 / n->n_in);
}

const mimo_kind mimo_kind_average = {
    .name = "average",
    .dot_shape = "hexagon",
    .infer = average_infer,
    .forward = average_forward,
    .backward = average_backward,
    .onnx = average_onnx,
};
