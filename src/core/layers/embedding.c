/* embedding.c — the embedding layer: integer ids (a model input declared
 * dtype: int32 or int64, or a hashing layer's bins) to rows of a table: y[.., :] = E[id, :], so an input of
 * shape (k) gives (k, output_dim). dE[id, :] += dy[.., :], repeated ids
 * adding up; ids get no gradient. Tensor: embeddings (input_dim,
 * output_dim), Keras' default initializer uniform(-0.05, 0.05). Ids are
 * checked when the data is opened (mimo_graph_input_ids); an id out of
 * range met here anyway (in-memory arrays) is an error, never a read
 * outside the table. */
#include <stdio.h>

#include "core/layers/ids.h"
#include "core/onnx.h"

typedef struct {
    int input_dim, output_dim;
    mimo_init embeddings_initializer;
    int mask_zero;
} embedding_args;

static const mimo_arg embedding_keys[] = {
    {MIMO_ARG(embedding_args, input_dim), .type = MIMO_ARG_INT, .required = 1,
     .lo = 1, .hi = MIMO_IDS_MAX, .expect = "an integer in [1, 16777216]"},
    {MIMO_ARG(embedding_args, output_dim), .type = MIMO_ARG_INT, .required = 1,
     .lo = 1, .hi = 1 << 24, .expect = "an integer > 0"},
    {MIMO_ARG(embedding_args, embeddings_initializer), .type = MIMO_ARG_INIT},
    {MIMO_ARG(embedding_args, mask_zero), .type = MIMO_ARG_BOOL},
};

static void embedding_defaults(void *p)
{
    embedding_args *a = p;
    a->embeddings_initializer = (mimo_init){MIMO_INIT_UNIFORM, -0.05, 0.05};
}

static int embedding_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const embedding_args *a = n->args;
    if (mimo_check_inputs(n, 1, 1, "", err, len))
        return -1;
    if (mimo_ids_input(g, n, 0, MIMO_SAMPLE_RANK - 1, err, len))
        return -1;
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    if (a->mask_zero && p->shape.rank != 1) {
        char sh[96];
        mimo_shape_format(&p->shape, sh, sizeof sh);
        snprintf(err, len, "embedding layer '%s': mask_zero: true needs ids of "
                 "shape (timesteps), but '%s' has shape %s", n->name, p->name, sh);
        return -1;
    }
    if (a->mask_zero) /* its output carries the mask: id 0 is padding */
        n->mask_src = (int)(n - g->nodes);
    n->shape = p->shape;
    n->shape.dim[n->shape.rank++] = a->output_dim;
    mimo_shape s = {2, {a->input_dim, a->output_dim}};
    return mimo_node_add_tensor(n, "embeddings", &s, a->embeddings_initializer,
                                a->input_dim, a->output_dim) < 0 ? -1 : 0;
}

/* The row of id v, or -1 (and the graph's fault) when v is no id. */
static long row_of(mimo_graph *g, const mimo_node *n, mimo_real v)
{
    return mimo_ids_row(g, n, v, ((const embedding_args *)n->args)->input_dim);
}

/* y, and with mask_zero the mask (B, T): 0 where the id is 0 */
static void embedding_buffers(mimo_graph *g, mimo_node *n, mimo_arena *a)
{
    const embedding_args *a_ = n->args;
    size_t B = (size_t)g->max_batch;
    n->y = mimo_arena_take(a, B * (size_t)n->width);
    n->mask = a_->mask_zero
                  ? mimo_arena_take(a, B * (size_t)MIMO_PARENT(g, n, 0)->width)
                  : NULL;
}

/* The rows of an int64 input's ids, read exactly (mimo_node_i64): the
 * loops below with another id type, apart so the float path stays the
 * loop it always was. dE NULL: forward (y, mask), else backward. */
static void wide_rows(mimo_graph *g, mimo_node *n, const mimo_real *E, mimo_real *dE,
                      size_t count)
{
    const embedding_args *a = n->args;
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    size_t d = (size_t)a->output_dim;
    for (size_t i = 0; !dE && n->mask && i < count; i++)
        ((mimo_real *)n->mask)[i] = mimo_node_i64(p, i) != 0;
    for (size_t i = 0; i < count; i++) {
        long row = mimo_ids_row_i64(g, n, mimo_node_i64(p, i), a->input_dim);
        for (size_t j = 0; !dE && j < d; j++)
            n->y[i * d + j] = row >= 0 ? E[(size_t)row * d + j] : 0;
        for (size_t j = 0; dE && row >= 0 && j < d; j++)
            dE[(size_t)row * d + j] += n->dy[i * d + j];
    }
}

static void embedding_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                              int b)
{
    const embedding_args *a = n->args;
    const mimo_real *ids = MIMO_PARENT(g, n, 0)->y;
    const mimo_real *E = params + n->tensors[0].off;
    size_t count = (size_t)b * (size_t)MIMO_PARENT(g, n, 0)->width, d = (size_t)a->output_dim;
    if (mimo_node_wide(g, MIMO_PARENT(g, n, 0))) {
        wide_rows(g, n, E, NULL, count);
        return;
    }
    for (size_t i = 0; n->mask && i < count; i++)
        ((mimo_real *)n->mask)[i] = ids[i] != 0;
    for (size_t i = 0; i < count; i++) {
        long row = row_of(g, n, ids[i]);
        for (size_t j = 0; j < d; j++)
            n->y[i * d + j] = row >= 0 ? E[(size_t)row * d + j] : 0;
    }
}

static void embedding_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                               mimo_real *grads, int b)
{
    (void)params;
    const embedding_args *a = n->args;
    if (!n->tensors[0].trained)
        return;
    const mimo_real *ids = MIMO_PARENT(g, n, 0)->y;
    mimo_real *dE = grads + n->tensors[0].off;
    size_t count = (size_t)b * (size_t)MIMO_PARENT(g, n, 0)->width, d = (size_t)a->output_dim;
    if (mimo_node_wide(g, MIMO_PARENT(g, n, 0))) {
        wide_rows(g, n, NULL, dE, count);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        long row = row_of(g, n, ids[i]);
        for (size_t j = 0; row >= 0 && j < d; j++)
            dE[(size_t)row * d + j] += n->dy[i * d + j];
    }
}

static long long embedding_id_bound(const mimo_node *n)
{
    return ((const embedding_args *)n->args)->input_dim;
}

/* Gather of the table's rows by the int32 ids themselves; with
 * mask_zero the mask, ids != 0 (compared as forward compares them, in
 * floating point). */
static const char *embedding_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                                  const char *const *in, char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    if (((const embedding_args *)n->args)->mask_zero) {
        const mimo_real zero = 0;
        const mimo_onnx_attr to = {.name = "to", .type = MIMO_ONNX_INT, .i = 1}; /* float */
        const char *ids = x->op(x, "Cast", in, 1, &to, 1);
        x->mask_out = mimo_onnx_op1(x, "Not", mimo_onnx_op2(x, "Equal", ids,
                                    x->constant(x, "zero", &zero, NULL, 0)));
        if (!x->mask_out)
            return NULL;
    }
    return mimo_onnx_op2(x, "Gather", mimo_onnx_tensor(x, n, 0), in[0]);
}

const mimo_kind mimo_kind_embedding = {
    .name = "embedding",
    .args = embedding_keys,
    .n_args = (int)(sizeof embedding_keys / sizeof *embedding_keys),
    .args_size = sizeof(embedding_args),
    .defaults = embedding_defaults,
    .dot_shape = "box",
    .flags = MIMO_KIND_ROW_SPARSE,
    .infer = embedding_infer,
    .buffers = embedding_buffers,
    .forward = embedding_forward,
    .backward = embedding_backward,
    .id_bound = embedding_id_bound,
    .onnx = embedding_onnx,
};
