/* bidirectional.c — Keras' Bidirectional around a gru or lstm:
 *   {type: bidirectional, layer: {type: gru, units: 6, ...},
 *    merge_mode: concat|sum|ave|mul, from: x}
 * Two copies of the wrapped layer (rnn.h's mimo_rnn, run by rnn.c's
 * code): the forward one with the layer's settings, the backward one with
 * go_backwards flipped; both with zero_output_for_mask set to
 * return_sequences, as Keras' Bidirectional forces it. Their tensors sit
 * side by side in this node, named forward_<name> and backward_<name>
 * (/params/<layer>/forward_kernel, ...), the wrapped kind's layouts.
 * Output, per sample: the last outputs merged, (u) or (2u) for concat;
 * with return_sequences every step's, (T, u|2u), the backward copy's
 * sequence reversed back to time order first (Keras reverses it whatever
 * the wrapped go_backwards says):
 *   concat [f, b];  sum f + b;  ave (f + b) / 2;  mul f b.
 * Masks: both copies read the input's; with return_sequences the output
 * keeps the input's mask as it is (each step in time order). Backward
 * splits dy into each copy's output gradient (mul: dy b and dy f) and
 * runs each copy's backward, both adding into the input's gradient. */
#include <stdio.h>
#include <string.h>

#include "core/kind.h"
#include "core/layers/rnn.h"
#include "core/onnx.h"

enum { MERGE_CONCAT, MERGE_SUM, MERGE_AVE, MERGE_MUL };

typedef struct {
    mimo_sublayer layer;
    int merge_mode;
} bidi_args;

static const char *const wrapped[] = {"gru", "lstm", NULL};
static const char *const merge_modes[] = {"concat", "sum", "ave", "mul", NULL};

static const mimo_arg bidi_keys[] = {
    {MIMO_ARG(bidi_args, layer), .type = MIMO_ARG_LAYER, .required = 1,
     .choices = wrapped, .expect = "a layer {type: gru or lstm, units: ...}"},
    {MIMO_ARG(bidi_args, merge_mode), .type = MIMO_ARG_CHOICE, .choices = merge_modes},
};

typedef struct {
    mimo_rnn f, b;          /* the forward and the backward copy */
    mimo_rnn_args fa, ba;   /* their settings */
    int mode, seq, T, u;
    mimo_real *yf, *yb;     /* (B, T, u) or (B, u): each copy's output, the
                             * backward one's in its step order */
    mimo_real *dyf, *dyb;   /* their gradients */
} bidi_node;

static int bidi_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    static const char *const fwd[3] = {"forward_kernel", "forward_recurrent_kernel",
                                       "forward_bias"};
    static const char *const bwd[3] = {"backward_kernel", "backward_recurrent_kernel",
                                       "backward_bias"};
    const bidi_args *a = n->args;
    bidi_node *d = n->priv;
    if (mimo_check_inputs(n, 1, 1, "", err, len))
        return -1;
    int lstm = a->layer.kind == &mimo_kind_lstm;
    d->fa = *(const mimo_rnn_args *)a->layer.args;
    d->fa.zero_output_for_mask = d->fa.return_sequences;
    d->ba = d->fa;
    d->ba.go_backwards = !d->fa.go_backwards;
    if (mimo_rnn_infer(&d->f, n, &d->fa, lstm, MIMO_PARENT(g, n, 0), fwd, err, len) ||
        mimo_rnn_infer(&d->b, n, &d->ba, lstm, MIMO_PARENT(g, n, 0), bwd, err, len))
        return -1;
    d->mode = a->merge_mode, d->seq = d->f.seq, d->T = d->f.T, d->u = d->f.u;
    int w = d->mode == MERGE_CONCAT ? 2 * d->u : d->u;
    n->shape = d->seq ? (mimo_shape){2, {d->T, w}} : (mimo_shape){1, {w}};
    return 0;
}

static void bidi_init(const mimo_node *n, mimo_real *params)
{
    bidi_node *d = n->priv;
    mimo_rnn_init(&d->f, n, &d->fa, params);
    mimo_rnn_init(&d->b, n, &d->ba, params);
}

/* values per sample of one copy's output */
static size_t copy_width(const bidi_node *d)
{
    return (size_t)(d->seq ? d->T : 1) * (size_t)d->u;
}

static void bidi_buffers(mimo_graph *g, mimo_node *n, mimo_arena *a)
{
    bidi_node *d = n->priv;
    size_t B = (size_t)g->max_batch, w = copy_width(d);
    int train = n->dy != NULL, dx = MIMO_PARENT(g, n, 0)->dy != NULL;
    n->y = mimo_arena_take(a, B * (size_t)n->width);
    d->yf = mimo_arena_take(a, B * w);
    d->yb = mimo_arena_take(a, B * w);
    mimo_rnn_buffers(&d->f, g, a, 0, train, dx);
    mimo_rnn_buffers(&d->b, g, a, 0, train, dx);
    d->dyf = train ? mimo_arena_take(a, B * w) : NULL;
    d->dyb = train ? mimo_arena_take(a, B * w) : NULL;
}

/* Output step t of row s as (f, b) rows of u: the backward copy's step
 * order reversed back to time order */
static size_t at_f(const bidi_node *d, int s, int t)
{
    return ((size_t)s * (d->seq ? d->T : 1) + (size_t)t) * (size_t)d->u;
}
static size_t at_b(const bidi_node *d, int s, int t)
{
    return at_f(d, s, d->seq ? d->T - 1 - t : t);
}

static void bidi_forward(mimo_graph *g, mimo_node *n, const mimo_real *params, int b)
{
    bidi_node *d = n->priv;
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    const int u = d->u, steps = d->seq ? d->T : 1;
    const int w = d->mode == MERGE_CONCAT ? 2 * u : u;
    mimo_rnn_forward(&d->f, n, params, p->y, p->mask, d->yf, b);
    mimo_rnn_forward(&d->b, n, params, p->y, p->mask, d->yb, b);
    for (int s = 0; s < b; s++)
        for (int t = 0; t < steps; t++) {
            const mimo_real *f = d->yf + at_f(d, s, t), *r = d->yb + at_b(d, s, t);
            mimo_real *y = n->y + ((size_t)s * steps + t) * (size_t)w;
            for (int j = 0; j < u; j++)
                switch (d->mode) {
                case MERGE_CONCAT: y[j] = f[j], y[u + j] = r[j]; break;
                case MERGE_SUM: y[j] = f[j] + r[j]; break;
                case MERGE_AVE: y[j] = (f[j] + r[j]) / 2; break;
                default: y[j] = f[j] * r[j];
                }
        }
}

static void bidi_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                          mimo_real *grads, int b)
{
    bidi_node *d = n->priv;
    const int u = d->u, steps = d->seq ? d->T : 1;
    const int w = d->mode == MERGE_CONCAT ? 2 * u : u;
    for (int s = 0; s < b; s++)
        for (int t = 0; t < steps; t++) {
            const mimo_real *dy = n->dy + ((size_t)s * steps + t) * (size_t)w;
            const mimo_real *f = d->yf + at_f(d, s, t), *r = d->yb + at_b(d, s, t);
            mimo_real *df = d->dyf + at_f(d, s, t), *dr = d->dyb + at_b(d, s, t);
            for (int j = 0; j < u; j++)
                switch (d->mode) {
                case MERGE_CONCAT: df[j] = dy[j], dr[j] = dy[u + j]; break;
                case MERGE_SUM: df[j] = dr[j] = dy[j]; break;
                case MERGE_AVE: df[j] = dr[j] = dy[j] / 2; break;
                default: df[j] = dy[j] * r[j], dr[j] = dy[j] * f[j];
                }
        }
    mimo_real *dx = MIMO_PARENT(g, n, 0)->dy;
    mimo_rnn_backward(&d->f, n, params, grads, d->dyf, dx, b);
    mimo_rnn_backward(&d->b, n, params, grads, d->dyb, dx, b);
}

static void bidi_describe(const mimo_node *n, char *buf, size_t len)
{
    const bidi_args *a = n->args;
    const bidi_node *d = n->priv;
    snprintf(buf, len, "%s(%s(%d%s), %s)", n->kind->name, a->layer.kind->name, d->u,
             d->seq ? ", seq" : "", merge_modes[d->mode]);
}

static double bidi_flops(const mimo_graph *g, const mimo_node *n)
{
    const bidi_node *d = n->priv;
    int dx = MIMO_PARENT(g, n, 0)->dy != NULL;
    return mimo_rnn_flops(&d->f, dx) + mimo_rnn_flops(&d->b, dx);
}

/* both copies' buffers, their outputs and their gradients */
static size_t bidi_scratch(const mimo_graph *g, const mimo_node *n, size_t b)
{
    const bidi_node *d = n->priv;
    int dx = MIMO_PARENT(g, n, 0)->dy != NULL;
    return mimo_rnn_scratch(&d->f, b, 0, dx) + mimo_rnn_scratch(&d->b, b, 0, dx) +
           4 * b * copy_width(d);
}

/* reads the mask; every step's output keeps the input's, in time order */
static int bidi_masking(const mimo_graph *g, const mimo_node *n)
{
    (void)g;
    const bidi_node *d = n->priv;
    return MIMO_MASK_USE | (d->seq ? MIMO_MASK_PASS : 0);
}

/* Each copy as rnn.c writes it (the builder's mask read by both), the
 * backward one's sequence reversed to time order, then the merge. */
static const char *bidi_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                             const char *const *in, char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    const bidi_node *d = n->priv;
    const char *f = mimo_rnn_onnx(x, n, &d->f, in[0]);
    const char *r = mimo_rnn_onnx(x, n, &d->b, in[0]);
    if (d->seq)
        r = r ? mimo_rnn_onnx_reversed(x, r) : NULL;
    if (!f || !r)
        return NULL;
    const mimo_real half = 0.5;
    const mimo_onnx_attr last = {.name = "axis", .type = MIMO_ONNX_INT, .i = -1};
    const char *both[2] = {f, r};
    switch (d->mode) {
    case MERGE_CONCAT: return x->op(x, "Concat", both, 2, &last, 1);
    case MERGE_SUM: return mimo_onnx_op2(x, "Add", f, r);
    case MERGE_AVE:
        return mimo_onnx_op2(x, "Mul", mimo_onnx_op2(x, "Add", f, r),
                             x->constant(x, "half", &half, NULL, 0));
    default: return mimo_onnx_op2(x, "Mul", f, r);
    }
}

const mimo_kind mimo_kind_bidirectional = {
    .name = "bidirectional", .args = bidi_keys,
    .n_args = (int)(sizeof bidi_keys / sizeof *bidi_keys),
    .args_size = sizeof(bidi_args), .node_size = sizeof(bidi_node),
    .dot_shape = "box", .infer = bidi_infer, .buffers = bidi_buffers,
    .forward = bidi_forward, .backward = bidi_backward,
    .describe = bidi_describe, .flops = bidi_flops, .scratch = bidi_scratch,
    .init = bidi_init, .masking = bidi_masking, .onnx = bidi_onnx,
};
