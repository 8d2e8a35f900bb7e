/* reshape.c — reshape (Keras): the sample's values in the same memory
 * order under target_shape (1 to 3 axes; one may be -1, inferred). A view:
 * no copy, no math (the output and its gradient are the input's). */
#include <stdio.h>

#include "core/kind.h"
#include "core/onnx.h"

typedef struct {
    mimo_ints target_shape;
} reshape_args;

static const mimo_arg reshape_keys[] = {
    {MIMO_ARG(reshape_args, target_shape), .type = MIMO_ARG_INTS, .required = 1,
     .lo = -1, .hi = 1 << 30, .expect = "an integer > 0 (or one -1)"},
};

static int reshape_finish(void *p, char *err, size_t len)
{
    const mimo_ints *t = &((reshape_args *)p)->target_shape;
    int unknown = 0;
    if (t->n > MIMO_SAMPLE_RANK) {
        snprintf(err, len, "target_shape has %d axes; a sample has at most %d",
                 t->n, MIMO_SAMPLE_RANK);
        return -1;
    }
    for (int k = 0; k < t->n; k++) {
        unknown += t->v[k] == -1;
        if (t->v[k] == 0 || unknown > 1) {
            snprintf(err, len, "target_shape needs sizes > 0, with at most one "
                     "-1 (inferred)");
            return -1;
        }
    }
    return 0;
}

static int reshape_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const mimo_ints *t = &((const reshape_args *)n->args)->target_shape;
    if (mimo_check_inputs(n, 1, 1, "", err, len))
        return -1;
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    long long known = 1;
    int free_axis = -1;
    n->shape.rank = t->n;
    for (int k = 0; k < t->n; k++) {
        n->shape.dim[k] = t->v[k];
        if (t->v[k] == -1)
            free_axis = k;
        else
            known *= t->v[k];
    }
    if (free_axis >= 0 && known > 0 && p->width % known == 0)
        n->shape.dim[free_axis] = (int)(p->width / known), known = p->width;
    if (known != p->width) {
        char a[96], b[96];
        mimo_shape_format(&p->shape, a, sizeof a);
        mimo_shape_format(&n->shape, b, sizeof b);
        snprintf(err, len, "reshape layer '%s': input '%s' has shape %s (%d "
                 "values), which cannot be reshaped to %s", n->name, p->name, a,
                 p->width, b);
        return -1;
    }
    return 0;
}

static void reshape_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                            int b)
{
    (void)params, (void)b;
    n->y = MIMO_PARENT(g, n, 0)->y;
}

/* dy is the parent's dy: consumers already added into it */
static void reshape_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                             mimo_real *grads, int b)
{
    (void)g, (void)n, (void)params, (void)grads, (void)b;
}

static const char *reshape_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                            const char *const *in, char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    return mimo_onnx_reshape(x, in[0], &n->shape);
}

const mimo_kind mimo_kind_reshape = {
    .name = "reshape",
    .args = reshape_keys,
    .n_args = 1,
    .args_size = sizeof(reshape_args),
    .finish = reshape_finish,
    .dot_shape = "box",
    .flags = MIMO_KIND_VIEW,
    .infer = reshape_infer,
    .forward = reshape_forward,
    .backward = reshape_backward,
    .onnx = reshape_onnx,
};
