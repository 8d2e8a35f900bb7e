/* weighted_sum.c — a mixture's output from [experts, gate]: experts
 * (k, s...) (a stack), gate (k) (a softmax, in MMoE) give (s...):
 *   y = sum_j gate_j experts_j;
 *   d experts_j += gate_j dy;  d gate_j += experts_j . dy */
#include <stdio.h>
#include <string.h>

#include "core/kind.h"
#include "core/onnx.h"

static int weighted_sum_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    if (n->n_in != 2) {
        snprintf(err, len, "weighted_sum layer '%s' takes [experts, gate], got "
                 "%d inputs", n->name, n->n_in);
        return -1;
    }
    const mimo_node *e = MIMO_PARENT(g, n, 0), *w = MIMO_PARENT(g, n, 1);
    if (e->shape.rank < 2) {
        snprintf(err, len, "weighted_sum layer '%s': experts '%s' must have "
                 "shape (k, ...) (a stack of k experts), got %d axis", n->name,
                 e->name, e->shape.rank);
        return -1;
    }
    if (w->shape.rank != 1 || w->width != e->shape.dim[0]) {
        snprintf(err, len, "weighted_sum layer '%s': gate '%s' has %d values "
                 "but experts '%s' stack %d: one gate value per expert",
                 n->name, w->name, w->width, e->name, e->shape.dim[0]);
        return -1;
    }
    n->shape.rank = e->shape.rank - 1;
    memcpy(n->shape.dim, e->shape.dim + 1, sizeof(int) * (size_t)n->shape.rank);
    return 0;
}

static void weighted_sum_forward(mimo_graph *g, mimo_node *n,
                                 const mimo_real *params, int b)
{
    (void)params;
    const mimo_real *e = MIMO_PARENT(g, n, 0)->y, *w = MIMO_PARENT(g, n, 1)->y;
    size_t k = (size_t)MIMO_PARENT(g, n, 1)->width, d = (size_t)n->width;
    for (size_t r = 0; r < (size_t)b; r++) {
        mimo_real *y = n->y + r * d;
        memset(y, 0, sizeof *y * d);
        for (size_t j = 0; j < k; j++)
            for (size_t i = 0; i < d; i++)
                y[i] += w[r * k + j] * e[(r * k + j) * d + i];
    }
}

static void weighted_sum_backward(mimo_graph *g, mimo_node *n,
                                  const mimo_real *params, mimo_real *grads, int b)
{
    (void)params, (void)grads;
    mimo_node *pe = MIMO_PARENT(g, n, 0), *pw = MIMO_PARENT(g, n, 1);
    size_t k = (size_t)pw->width, d = (size_t)n->width;
    for (size_t r = 0; r < (size_t)b; r++) {
        const mimo_real *dy = n->dy + r * d;
        for (size_t j = 0; j < k; j++) {
            const mimo_real *e = pe->y + (r * k + j) * d;
            mimo_real gj = pw->y[r * k + j], s = 0;
            for (size_t i = 0; i < d; i++) {
                if (pe->dy)
                    pe->dy[(r * k + j) * d + i] += gj * dy[i];
                s += e[i] * dy[i];
            }
            if (pw->dy)
                pw->dy[r * k + j] += s;
        }
    }
}

/* experts (N, k, s...) times the gate reshaped to (N, k, 1, ...), summed
 * over axis 1. */
static const char *weighted_sum_onnx(mimo_onnx *x, const mimo_graph *g,
                                     const mimo_node *n, const char *const *in,
                                     char *err, size_t len)
{
    (void)err, (void)len;
    const mimo_node *e = MIMO_PARENT(g, n, 0);
    mimo_shape gs = {e->shape.rank, {0}};
    for (int a = 0; a < gs.rank; a++)
        gs.dim[a] = a ? 1 : e->shape.dim[0];
    const long long one = 1;
    const mimo_onnx_attr keep = {.name = "keepdims", .type = MIMO_ONNX_INT, .i = 0};
    const char *v[2] = {mimo_onnx_op2(x, "Mul", in[0], mimo_onnx_reshape(x, in[1], &gs)),
                        x->constant_i64(x, "axes", &one, 1)};
    return v[0] && v[1] ? x->op(x, "ReduceSum", v, 2, &keep, 1) : NULL;
}

const mimo_kind mimo_kind_weighted_sum = {
    .name = "weighted_sum",
    .dot_shape = "hexagon",
    .infer = weighted_sum_infer,
    .forward = weighted_sum_forward,
    .backward = weighted_sum_backward,
    .onnx = weighted_sum_onnx,
};
