/* multiply.c — the multiply merge: y = x_1 x_2 ... elementwise (equal
 * shapes); dx_k += dy prod_{j != k} x_j, without division, so exact when
 * some x_j = 0. */
#include <string.h>

#include "core/layers/merge.h"
#include "core/onnx.h"

static int multiply_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    if (mimo_check_inputs(n, 2, 0, "", err, len))
        return -1;
    return mimo_merge_same_shape(g, n, err, len);
}

static void multiply_forward(mimo_graph *g, mimo_node *n,
                             const mimo_real *params, int b)
{
    (void)params;
    size_t len = (size_t)b * n->width;
    memcpy(n->y, MIMO_PARENT(g, n, 0)->y, sizeof(mimo_real) * len);
    for (int k = 1; k < n->n_in; k++) {
        const mimo_real *x = MIMO_PARENT(g, n, k)->y;
        for (size_t i = 0; i < len; i++)
            n->y[i] *= x[i];
    }
}

static void multiply_backward(mimo_graph *g, mimo_node *n,
                              const mimo_real *params, mimo_real *grads, int b)
{
    (void)params, (void)grads;
    size_t len = (size_t)b * n->width;
    for (int k = 0; k < n->n_in; k++) {
        mimo_node *p = MIMO_PARENT(g, n, k);
        if (!p->dy)
            continue;
        for (size_t i = 0; i < len; i++) {
            mimo_real prod = n->dy[i];
            for (int j = 0; j < n->n_in; j++)
                if (j != k)
                    prod *= MIMO_PARENT(g, n, j)->y[i];
            p->dy[i] += prod;
        }
    }
}

static const char *multiply_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                                 const char *const *in, char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    const char *y = in[0];
    for (int k = 1; k < n->n_in; k++)
        y = mimo_onnx_op2(x, "Mul", y, in[k]);
    return y;
}

const mimo_kind mimo_kind_multiply = {
    .name = "multiply",
    .dot_shape = "hexagon",
    .infer = multiply_infer,
    .forward = multiply_forward,
    .backward = multiply_backward,
    .onnx = multiply_onnx,
};
