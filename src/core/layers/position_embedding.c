/* position_embedding.c — keras_hub's PositionEmbedding: a trainable table
 * `embeddings` (sequence_length, F) for an input (T, F), T <=
 * sequence_length; the output is the table's first T rows, the same for
 * every sample (the input gives only the shape; add it to the input with
 * an `add` layer, as keras_hub's users do):
 *   y[s, t, f] = E[t, f];  dE[t, f] += sum over s of dy[s, t, f]
 * The input takes no gradient from it. Initializer glorot_uniform (fans
 * sequence_length and F, Keras' for a 2-D weight), keras_hub's default.
 * Its output keeps the time axis step for step: a mask passes on. */
#include <stdio.h>
#include <string.h>

#include "core/kind.h"
#include "core/onnx.h"

typedef struct {
    int sequence_length;
    mimo_init initializer;
} pos_args;

static const mimo_arg pos_keys[] = {
    {MIMO_ARG(pos_args, sequence_length), .type = MIMO_ARG_INT, .required = 1,
     .lo = 1, .hi = 1 << 24, .expect = "an integer > 0"},
    {MIMO_ARG(pos_args, initializer), .type = MIMO_ARG_INIT},
};

static void pos_defaults(void *p)
{
    pos_args *a = p;
    a->initializer = (mimo_init){MIMO_INIT_GLOROT_UNIFORM, 0, 0};
}

static int pos_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const pos_args *a = n->args;
    if (mimo_check_inputs(n, 1, 1, "", err, len))
        return -1;
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    char sh[96];
    mimo_shape_format(&p->shape, sh, sizeof sh);
    if (p->shape.rank != 2) {
        snprintf(err, len, "%s layer '%s' needs a sequence input (timesteps, "
                 "features), but '%s' has shape %s", n->kind->name, n->name,
                 p->name, sh);
        return -1;
    }
    if (p->shape.dim[0] > a->sequence_length) {
        snprintf(err, len, "%s layer '%s': its input '%s' has %d timesteps "
                 "(shape %s), more than its sequence_length of %d", n->kind->name,
                 n->name, p->name, p->shape.dim[0], sh, a->sequence_length);
        return -1;
    }
    n->shape = p->shape;
    mimo_shape ts = {2, {a->sequence_length, p->shape.dim[1]}};
    return mimo_node_add_tensor(n, "embeddings", &ts, a->initializer,
                                a->sequence_length, p->shape.dim[1]) < 0 ? -1 : 0;
}

static void pos_forward(mimo_graph *g, mimo_node *n, const mimo_real *params, int b)
{
    (void)g;
    const size_t w = (size_t)n->width; /* T F: the table's first T rows */
    for (int s = 0; s < b; s++)
        memcpy(n->y + (size_t)s * w, params + n->tensors[0].off, sizeof(mimo_real) * w);
}

static void pos_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                         mimo_real *grads, int b)
{
    (void)g, (void)params;
    const size_t w = (size_t)n->width;
    if (!n->tensors[0].trained)
        return;
    mimo_real *dE = grads + n->tensors[0].off;
    for (int s = 0; s < b; s++)
        for (size_t j = 0; j < w; j++)
            dE[j] += n->dy[(size_t)s * w + j];
}

static void pos_describe(const mimo_node *n, char *buf, size_t len)
{
    const pos_args *a = n->args;
    snprintf(buf, len, "%s(%d)", n->kind->name, a->sequence_length);
}

/* the output keeps the input's time axis step for step */
static int pos_masking(const mimo_graph *g, const mimo_node *n)
{
    (void)g, (void)n;
    return MIMO_MASK_PASS;
}

/* the table's first T rows, a (T, F) constant, expanded to the input's
 * shape (N, T, F) */
static const char *pos_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                            const char *const *in, char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    const long long dims[2] = {n->shape.dim[0], n->shape.dim[1]};
    const char *t = x->constant(x, "embeddings", x->params + n->tensors[0].off, dims, 2);
    return mimo_onnx_op2(x, "Expand", t, mimo_onnx_op1(x, "Shape", in[0]));
}

const mimo_kind mimo_kind_position_embedding = {
    .name = "position_embedding", .args = pos_keys,
    .n_args = (int)(sizeof pos_keys / sizeof *pos_keys),
    .args_size = sizeof(pos_args), .defaults = pos_defaults,
    .dot_shape = "box", .infer = pos_infer, .forward = pos_forward,
    .backward = pos_backward, .describe = pos_describe, .masking = pos_masking,
    .onnx = pos_onnx,
};
