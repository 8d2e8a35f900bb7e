/* concat.c — the concat merge along the last axis: y = [x_1, x_2, ...];
 * all but the last axis must agree. dx_k += dy[..., off_k : off_k + d_k],
 * the slice of parent k's columns. */
#include <stdio.h>
#include <string.h>

#include "core/kind.h"
#include "core/onnx.h"

static int concat_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const mimo_node *p0 = MIMO_PARENT(g, n, 0);
    if (mimo_check_inputs(n, 1, 0, "", err, len))
        return -1;
    n->shape = p0->shape;
    n->shape.dim[n->shape.rank - 1] = 0;
    for (int k = 0; k < n->n_in; k++) {
        const mimo_node *p = MIMO_PARENT(g, n, k);
        int same = p->shape.rank == p0->shape.rank;
        for (int a = 0; same && a + 1 < p0->shape.rank; a++)
            same = p->shape.dim[a] == p0->shape.dim[a];
        if (!same) {
            char a[96], b[96];
            mimo_shape_format(&p->shape, a, sizeof a);
            mimo_shape_format(&p0->shape, b, sizeof b);
            snprintf(err, len, "concat layer '%s': input '%s' has shape %s but "
                     "'%s' has %s; all axes but the last must match", n->name,
                     p->name, a, p0->name, b);
            return -1;
        }
        n->shape.dim[n->shape.rank - 1] += mimo_shape_last(&p->shape);
    }
    return 0;
}

static void concat_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                           int b)
{
    (void)params;
    int w = mimo_shape_last(&n->shape), rows = b * mimo_shape_rows(&n->shape);
    int off = 0;
    for (int k = 0; k < n->n_in; k++) {
        const mimo_node *p = MIMO_PARENT(g, n, k);
        int pw = mimo_shape_last(&p->shape);
        for (int r = 0; r < rows; r++)
            memcpy(n->y + (size_t)r * w + off, p->y + (size_t)r * pw,
                   sizeof(mimo_real) * (size_t)pw);
        off += pw;
    }
}

static void concat_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                            mimo_real *grads, int b)
{
    (void)params, (void)grads;
    int w = mimo_shape_last(&n->shape), rows = b * mimo_shape_rows(&n->shape);
    int off = 0;
    for (int k = 0; k < n->n_in; k++) {
        mimo_node *p = MIMO_PARENT(g, n, k);
        int pw = mimo_shape_last(&p->shape);
        if (p->dy)
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < pw; j++)
                    p->dy[(size_t)r * pw + j] += n->dy[(size_t)r * w + off + j];
        off += pw;
    }
}

/* The columns from the first to the last part that has a gradient: a
 * dense layer after a concat of raw inputs and branches computes only
 * those. */
static void concat_grad_span(const mimo_graph *g, const mimo_node *n, int *lo,
                             int *hi)
{
    int off = 0, first = -1, end = 0;
    for (int k = 0; k < n->n_in; k++) {
        const mimo_node *q = MIMO_PARENT(g, n, k);
        int qw = mimo_shape_last(&q->shape);
        if (q->dy) {
            first = first < 0 ? off : first;
            end = off + qw;
        }
        off += qw;
    }
    *lo = first < 0 ? 0 : first, *hi = end;
}

static const char *const concat_aliases[] = {"concatenate", NULL};

static const char *concat_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                               const char *const *in, char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    const mimo_onnx_attr last = {.name = "axis", .type = MIMO_ONNX_INT, .i = -1};
    return x->op(x, "Concat", in, n->n_in, &last, 1);
}

const mimo_kind mimo_kind_concat = {
    .name = "concat",
    .aliases = concat_aliases,
    .dot_shape = "hexagon",
    .infer = concat_infer,
    .forward = concat_forward,
    .backward = concat_backward,
    .grad_span = concat_grad_span,
    .onnx = concat_onnx,
};
