/* merge.c — helpers of the merge kinds (see merge.h). */
#include "core/layers/merge.h"

#include "core/onnx.h"

#include <stdio.h>
#include <string.h>

/* "4 features" for one axis, "shape (None, 2, 3)" otherwise. */
static void shape_words(const mimo_shape *s, char *buf, size_t len)
{
    if (s->rank == 1) {
        snprintf(buf, len, "%d features", s->dim[0]);
        return;
    }
    char sh[96];
    mimo_shape_format(s, sh, sizeof sh);
    snprintf(buf, len, "shape %s", sh);
}

int mimo_merge_same_shape(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const mimo_node *p0 = MIMO_PARENT(g, n, 0);
    n->shape = p0->shape;
    for (int k = 1; k < n->n_in; k++) {
        const mimo_node *p = MIMO_PARENT(g, n, k);
        if (p->shape.rank == p0->shape.rank &&
            memcmp(p->shape.dim, p0->shape.dim, sizeof(int) * (size_t)p0->shape.rank) == 0)
            continue;
        char a[128], b[128];
        shape_words(&p->shape, a, sizeof a);
        shape_words(&p0->shape, b, sizeof b);
        snprintf(err, len, "%s layer '%s': input '%s' has %s but '%s' has %s; "
                 "all inputs must have the same %s", n->kind->name, n->name,
                 p->name, a, p0->name, b, p0->shape.rank == 1 ? "width" : "shape");
        return -1;
    }
    return 0;
}

void mimo_merge_sum_forward(mimo_graph *g, mimo_node *n, int b, mimo_real sign,
                            mimo_real scale)
{
    size_t len = (size_t)b * n->width;
    memcpy(n->y, MIMO_PARENT(g, n, 0)->y, sizeof(mimo_real) * len);
    for (int k = 1; k < n->n_in; k++) {
        const mimo_real *x = MIMO_PARENT(g, n, k)->y;
        for (size_t i = 0; i < len; i++)
            n->y[i] += sign * x[i];
    }
    if (scale != 1)
        for (size_t i = 0; i < len; i++)
            n->y[i] *= scale;
}

void mimo_merge_sum_backward(mimo_graph *g, mimo_node *n, int b, mimo_real sign,
                             mimo_real scale)
{
    size_t len = (size_t)b * n->width;
    for (int k = 0; k < n->n_in; k++) {
        mimo_node *p = MIMO_PARENT(g, n, k);
        mimo_real c = k ? sign * scale : scale;
        if (p->dy)
            for (size_t i = 0; i < len; i++)
                p->dy[i] += c * n->dy[i];
    }
}

const char *mimo_merge_sum_onnx(mimo_onnx *x, const mimo_node *n,
                                const char *const *in, int sign, mimo_real scale)
{
    const char *y = in[0];
    for (int k = 1; k < n->n_in; k++)
        y = mimo_onnx_op2(x, sign > 0 ? "Add" : "Sub", y, in[k]);
    if (scale != 1)
        y = mimo_onnx_op2(x, "Mul", y, x->constant(x, "scale", &scale, NULL, 0));
    return y;
}
