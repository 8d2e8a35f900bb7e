/* embedding_bag.c — bags of integer ids pooled through a table: ids
 * (.., L) padded with 0 (a model input, dtype: int32), optional per-id
 * weights (.., L) as a second input, give (.., d):
 *   sum:  y = sum_j w_j E[id_j]              (w_j = 1 without weights)
 *   mean: y = sum_j w_j E[id_j] / sum_j w_j  (TF's combiner "mean")
 *   max:  y_k = max_j E[id_j, k]             (no weights)
 * over the ids j of the bag that count: all, or with mask_zero (the
 * default) those that are not 0, the padding. A bag with no id that
 * counts (or weights summing to 0 under mean) gives zeros.
 * Backward: dE[id_j] += w_j dy / W (W = sum_j w_j for mean, else 1),
 * repeated ids adding up; max: dE[id_j*, k] += dy_k for the first j*
 * reaching the max; the weights, when a layer computes them,
 * dw_j += dy . E[id_j] / W (mean: dy . (E[id_j] - y) / W).
 * Tensor: embeddings (input_dim, output_dim), as embedding's: its
 * gradient lies in the rows the ids name (MIMO_KIND_ROW_SPARSE). */
#include <stdio.h>
#include <string.h>
#include <tgmath.h>

#include "core/layers/ids.h"
#include "core/onnx.h"

typedef enum { COMBINE_SUM, COMBINE_MEAN, COMBINE_MAX } combiner;

static const char *const combiners[] = {"sum", "mean", "max", NULL};

typedef struct {
    int input_dim, output_dim, combiner, mask_zero;
    mimo_init embeddings_initializer;
} bag_args;

static const mimo_arg bag_keys[] = {
    {MIMO_ARG(bag_args, input_dim), .type = MIMO_ARG_INT, .required = 1,
     .lo = 1, .hi = MIMO_IDS_MAX, .expect = "an integer in [1, 16777216]"},
    {MIMO_ARG(bag_args, output_dim), .type = MIMO_ARG_INT, .required = 1,
     .lo = 1, .hi = 1 << 24, .expect = "an integer > 0"},
    {MIMO_ARG(bag_args, combiner), .type = MIMO_ARG_CHOICE, .choices = combiners},
    {MIMO_ARG(bag_args, mask_zero), .type = MIMO_ARG_BOOL},
    {MIMO_ARG(bag_args, embeddings_initializer), .type = MIMO_ARG_INIT},
};

static void bag_defaults(void *p)
{
    bag_args *a = p;
    a->combiner = COMBINE_MEAN; /* PyTorch's and TF's default */
    a->mask_zero = 1;           /* bags are padded with 0 */
    a->embeddings_initializer = (mimo_init){MIMO_INIT_UNIFORM, -0.05, 0.05};
}

static int bag_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const bag_args *a = n->args;
    if (mimo_check_inputs(n, 1, 2, " (ids, or [ids, weights])", err, len) ||
        mimo_ids_input(g, n, 0, MIMO_SAMPLE_RANK - 1, err, len))
        return -1;
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    if (p->shape.rank < 1) {
        snprintf(err, len, "embedding_bag layer '%s': input '%s' holds one id "
                 "per sample; a bag is an axis of ids (shape: L)", n->name, p->name);
        return -1;
    }
    if (n->n_in == 2) {
        const mimo_node *w = MIMO_PARENT(g, n, 1);
        if (a->combiner == COMBINE_MAX) {
            snprintf(err, len, "embedding_bag layer '%s': weights '%s' need "
                     "combiner sum or mean (max takes no weights)", n->name, w->name);
            return -1;
        }
        if (w->shape.rank != p->shape.rank ||
            memcmp(w->shape.dim, p->shape.dim, sizeof(int) * (size_t)p->shape.rank)) {
            snprintf(err, len, "embedding_bag layer '%s': weights '%s' must have "
                     "the shape of the ids '%s' (one weight per id)", n->name,
                     w->name, p->name);
            return -1;
        }
    }
    n->shape = p->shape;
    n->shape.dim[n->shape.rank - 1] = a->output_dim;
    mimo_shape s = {2, {a->input_dim, a->output_dim}};
    return mimo_node_add_tensor(n, "embeddings", &s, a->embeddings_initializer,
                                a->input_dim, a->output_dim) < 0 ? -1 : 0;
}

/* One bag: its L ids (floats, or an int64 input's: ids64) and weights
 * (NULL: 1), its output (d). */
typedef struct {
    const mimo_real *ids, *w;
    const char *ids64;
    mimo_real *y;
} bag;

static bag bag_at(const mimo_graph *g, const mimo_node *n, size_t r, int L)
{
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    const mimo_real *w = n->n_in == 2 ? MIMO_PARENT(g, n, 1)->y : NULL;
    size_t d = (size_t)((const bag_args *)n->args)->output_dim;
    int wide = mimo_node_wide(g, p);
    return (bag){wide ? NULL : p->y + r * (size_t)L, w ? w + r * (size_t)L : NULL,
                 wide ? (const char *)p->y + r * (size_t)L * sizeof(int64_t) : NULL,
                 n->y + r * d};
}

/* The row of the bag's j-th id, or -1 when it does not count (padding,
 * or no id: then the graph's fault). */
static long row_at(mimo_graph *g, const mimo_node *n, const bag *k, int j)
{
    const bag_args *a = n->args;
    if (k->ids64) {
        int64_t v;
        memcpy(&v, k->ids64 + (size_t)j * sizeof v, sizeof v);
        return a->mask_zero && v == 0 ? -1 : mimo_ids_row_i64(g, n, v, a->input_dim);
    }
    if (a->mask_zero && k->ids[j] == 0)
        return -1;
    return mimo_ids_row(g, n, k->ids[j], a->input_dim);
}

/* W: the sum of the weights of the ids that count (mean), else 1; 0
 * when the bag gives zeros. */
static mimo_real divisor(mimo_graph *g, const mimo_node *n, const bag *k, int L)
{
    const bag_args *a = n->args;
    mimo_real W = 0;
    int any = 0;
    for (int j = 0; j < L; j++)
        if (row_at(g, n, k, j) >= 0) {
            W += k->w ? k->w[j] : 1;
            any = 1;
        }
    return a->combiner == COMBINE_MEAN ? W : any;
}

static void bag_forward(mimo_graph *g, mimo_node *n, const mimo_real *params, int b)
{
    const bag_args *a = n->args;
    const mimo_real *E = params + n->tensors[0].off;
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    int L = mimo_shape_last(&p->shape);
    size_t bags = (size_t)b * (size_t)mimo_shape_rows(&p->shape), d = (size_t)a->output_dim;
    for (size_t r = 0; r < bags; r++) {
        bag k = bag_at(g, n, r, L);
        mimo_real W = divisor(g, n, &k, L);
        int first = 1;
        memset(k.y, 0, sizeof *k.y * d);
        for (int j = 0; j < L && W != 0; j++) {
            long row = row_at(g, n, &k, j);
            if (row < 0)
                continue;
            const mimo_real *e = E + (size_t)row * d;
            mimo_real c = (k.w ? k.w[j] : 1) / W;
            for (size_t q = 0; q < d; q++) {
                if (a->combiner != COMBINE_MAX)
                    k.y[q] += c * e[q];
                else if (first || e[q] > k.y[q])
                    k.y[q] = e[q];
            }
            first = 0;
        }
    }
}

/* max: dE[id_j*, q] += dy_q, j* the first id reaching y_q */
static void max_backward(mimo_graph *g, mimo_node *n, const mimo_real *E,
                         mimo_real *dE, const bag *k, const mimo_real *dy, int L)
{
    size_t d = (size_t)((const bag_args *)n->args)->output_dim;
    for (size_t q = 0; q < d; q++)
        for (int j = 0; j < L; j++) {
            long row = row_at(g, n, k, j);
            if (row >= 0 && E[(size_t)row * d + q] == k->y[q]) {
                dE[(size_t)row * d + q] += dy[q];
                break;
            }
        }
}

static void bag_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                         mimo_real *grads, int b)
{
    const bag_args *a = n->args;
    const mimo_real *E = params + n->tensors[0].off;
    mimo_real *dE = n->tensors[0].trained ? grads + n->tensors[0].off : NULL;
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    mimo_real *dw = n->n_in == 2 ? MIMO_PARENT(g, n, 1)->dy : NULL;
    int L = mimo_shape_last(&p->shape);
    size_t bags = (size_t)b * (size_t)mimo_shape_rows(&p->shape), d = (size_t)a->output_dim;
    for (size_t r = 0; r < bags; r++) {
        bag k = bag_at(g, n, r, L);
        const mimo_real *dy = n->dy + r * d;
        if (a->combiner == COMBINE_MAX) {
            if (dE)
                max_backward(g, n, E, dE, &k, dy, L);
            continue;
        }
        mimo_real W = divisor(g, n, &k, L), dyy = 0;
        for (size_t q = 0; q < d && a->combiner == COMBINE_MEAN; q++)
            dyy += dy[q] * k.y[q];
        for (int j = 0; j < L && W != 0; j++) {
            long row = row_at(g, n, &k, j);
            if (row < 0)
                continue;
            const mimo_real *e = E + (size_t)row * d;
            mimo_real c = (k.w ? k.w[j] : 1) / W, de = 0;
            for (size_t q = 0; q < d; q++) {
                if (dE)
                    dE[(size_t)row * d + q] += c * dy[q];
                de += dy[q] * e[q];
            }
            if (dw) /* mean: y depends on w_j through W too */
                dw[r * (size_t)L + (size_t)j] += (de - dyy) / W;
        }
    }
}

static void bag_describe(const mimo_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "embedding_bag(%s)", combiners[((const bag_args *)n->args)->combiner]);
}

static long long bag_id_bound(const mimo_node *n)
{
    return ((const bag_args *)n->args)->input_dim;
}

/* The table's rows by the ids (Gather, (N, L, d)), each times its count
 * c_j = [id_j counts] w_j, summed over the bag; mean divides by the sum
 * of c_j, max takes the largest over the ids that count; a bag with
 * none (or weights summing to 0) gives zeros, as forward does. */
static const char *bag_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                            const char *const *in, char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    const bag_args *a = n->args;
    const mimo_real half = (mimo_real)0.5, zero = 0, lowest = (mimo_real)-3.4028234e38f;
    const long long last = -1, bagax = -2;
    const mimo_onnx_attr to_float = {.name = "to", .type = MIMO_ONNX_INT, .i = 1};
    const mimo_onnx_attr keep = {.name = "keepdims", .type = MIMO_ONNX_INT, .i = 0};
    const char *rows = mimo_onnx_op2(x, "Gather", mimo_onnx_tensor(x, n, 0), in[0]);
    const char *ids = x->op(x, "Cast", &in[0], 1, &to_float, 1);
    const char *on = a->mask_zero
        ? mimo_onnx_op2(x, "Greater", ids, x->constant(x, "half", &half, NULL, 0)) : NULL;
    const char *c = on ? x->op(x, "Cast", &on, 1, &to_float, 1)
                       : mimo_onnx_op2(x, "Add", mimo_onnx_op2(x, "Mul", ids,
                                         x->constant(x, "zero", &zero, NULL, 0)),
                                       x->constant(x, "one", (const mimo_real[]){1}, NULL, 0));
    if (n->n_in > 1)
        c = mimo_onnx_op2(x, "Mul", c, in[1]);
    const char *axes = x->constant_i64(x, "axes", &last, 1);
    const char *cu = mimo_onnx_op2(x, "Unsqueeze", c, axes); /* (N, L, 1) */
    const char *bax = x->constant_i64(x, "bag_axis", &bagax, 1);
    if (a->combiner == COMBINE_MAX) {
        const char *zeros = x->constant(x, "zero", &zero, NULL, 0);
        const char *pos = mimo_onnx_op2(x, "Greater", cu, zeros);
        const char *sel[3] = {pos, rows, x->constant(x, "lowest", &lowest, NULL, 0)};
        /* ReduceMax takes its axes as an attribute until opset 18 */
        const mimo_onnx_attr mat[2] = {
            keep, {.name = "axes", .type = MIMO_ONNX_INTS, .ints = &bagax, .n = 1}};
        const char *m = pos && rows && sel[2] ? x->op(x, "Where", sel, 3, NULL, 0) : NULL;
        const char *mx = m ? x->op(x, "ReduceMax", &m, 1, mat, 2) : NULL;
        const char *cnt[2] = {c, axes}; /* c is (N, L): its bag axis is the last */
        const char *none = mimo_onnx_op2(x, "Equal", c && bax ? x->op(x, "ReduceSum", cnt, 2,
                                                                   &keep, 1) : NULL, zeros);
        const char *w[3] = {mimo_onnx_op2(x, "Unsqueeze", none, axes), zeros, mx};
        return w[0] && mx ? x->op(x, "Where", w, 3, NULL, 0) : NULL;
    }
    const char *s[2] = {mimo_onnx_op2(x, "Mul", rows, cu), bax};
    const char *sum = s[0] && bax ? x->op(x, "ReduceSum", s, 2, &keep, 1) : NULL;
    if (a->combiner == COMBINE_SUM)
        return sum;
    const char *zeros = x->constant(x, "zero", &zero, NULL, 0);
    const char *d[2] = {c, axes};
    const char *den = c && bax ? x->op(x, "ReduceSum", d, 2, &keep, 1) : NULL;
    const char *denu = mimo_onnx_op2(x, "Unsqueeze", den, axes);
    const char *none = mimo_onnx_op2(x, "Equal", denu, zeros);
    const char *safe[3] = {none, x->constant(x, "one", (const mimo_real[]){1}, NULL, 0), denu};
    const char *q = mimo_onnx_op2(x, "Div", sum, none && safe[1] && denu
                                                     ? x->op(x, "Where", safe, 3, NULL, 0)
                                                     : NULL);
    const char *w[3] = {none, zeros, q};
    return none && q ? x->op(x, "Where", w, 3, NULL, 0) : NULL;
}

const mimo_kind mimo_kind_embedding_bag = {
    .name = "embedding_bag",
    .args = bag_keys,
    .n_args = (int)(sizeof bag_keys / sizeof *bag_keys),
    .args_size = sizeof(bag_args),
    .defaults = bag_defaults,
    .dot_shape = "box",
    .flags = MIMO_KIND_ROW_SPARSE,
    .infer = bag_infer,
    .forward = bag_forward,
    .backward = bag_backward,
    .describe = bag_describe,
    .id_bound = bag_id_bound,
    .onnx = bag_onnx,
};
