/* stack.c — the stack merge: k inputs of one shape s give (k, s...), input
 * j at position j of the new first axis (Keras' ops.stack(axis=1)): the
 * experts of a mixture, for weighted_sum. dx_j += dy[j]. */
#include <stdio.h>
#include <string.h>

#include "core/layers/merge.h"
#include "core/onnx.h"

static int stack_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    if (mimo_check_inputs(n, 2, 0, "", err, len) ||
        mimo_merge_same_shape(g, n, err, len))
        return -1;
    if (n->shape.rank >= MIMO_SAMPLE_RANK) {
        snprintf(err, len, "stack layer '%s': its inputs have %d axes; the "
                 "stack adds one, and samples have at most %d", n->name,
                 n->shape.rank, MIMO_SAMPLE_RANK);
        return -1;
    }
    memmove(n->shape.dim + 1, n->shape.dim, sizeof(int) * (size_t)n->shape.rank);
    n->shape.dim[0] = n->n_in;
    n->shape.rank++;
    return 0;
}

static void stack_forward(mimo_graph *g, mimo_node *n, const mimo_real *params, int b)
{
    (void)params;
    size_t w = (size_t)MIMO_PARENT(g, n, 0)->width, k = (size_t)n->n_in;
    for (size_t j = 0; j < k; j++) {
        const mimo_real *x = MIMO_PARENT(g, n, (int)j)->y;
        for (size_t r = 0; r < (size_t)b; r++)
            memcpy(n->y + (r * k + j) * w, x + r * w, sizeof *x * w);
    }
}

static void stack_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                           mimo_real *grads, int b)
{
    (void)params, (void)grads;
    size_t w = (size_t)MIMO_PARENT(g, n, 0)->width, k = (size_t)n->n_in;
    for (size_t j = 0; j < k; j++) {
        mimo_real *dx = MIMO_PARENT(g, n, (int)j)->dy;
        for (size_t r = 0; dx && r < (size_t)b; r++)
            for (size_t i = 0; i < w; i++)
                dx[r * w + i] += n->dy[(r * k + j) * w + i];
    }
}

/* Each input with a new axis 1, concatenated along it. */
static const char *stack_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                              const char *const *in, char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    const char *u[64];
    const long long one = 1;
    const mimo_onnx_attr axis = {.name = "axis", .type = MIMO_ONNX_INT, .i = 1};
    if (n->n_in > 64)
        return NULL;
    for (int k = 0; k < n->n_in; k++)
        if (!(u[k] = mimo_onnx_op2(x, "Unsqueeze", in[k], x->constant_i64(x, "axes", &one, 1))))
            return NULL;
    return x->op(x, "Concat", u, n->n_in, &axis, 1);
}

const mimo_kind mimo_kind_stack = {
    .name = "stack",
    .dot_shape = "hexagon",
    .infer = stack_infer,
    .forward = stack_forward,
    .backward = stack_backward,
    .onnx = stack_onnx,
};
